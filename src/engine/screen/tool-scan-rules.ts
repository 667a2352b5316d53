/**
 * What makes a tool definition suspect (tool poisoning): text the user never sees but the model
 * reads and obeys. Each rule finds the spans of one kind in one string. The phrase rules read the
 * text with invisible characters removed and compatibility forms folded (NFKC), so neither
 * `ig\u200bnore previous instructions` nor full-width letters slip past them.
 */

export const TOOL_FINDING_KINDS = [
  'hidden_instructions',
  'concealment',
  'credential_access',
  'invisible_characters',
  'bidi_control',
  'tag_characters',
  'terminal_escape',
  'encoded_blob',
] as const;
export type ToolFindingKind = (typeof TOOL_FINDING_KINDS)[number];

export interface RuleHit {
  kind: ToolFindingKind;
  /** Where in the text (the raw text for character rules, the folded text for phrase rules). */
  index: number;
  length: number;
  /** For encoded blobs that decode to text: that text, for the human who approves the tool. */
  decoded?: string;
  folded: boolean;
}

const PHRASES: readonly { kind: ToolFindingKind; regex: RegExp }[] = [
  // Markers that pose as a higher authority than the description around them.
  {
    kind: 'hidden_instructions',
    regex:
      /<\s*\/?\s*(?:important|system|instructions?|hidden|secret|admin|critical|system[-_ ]?prompt|sys|ai[-_ ]?instructions?|note[-_ ]to[-_ ](?:ai|assistant|model))\b[^<>]{0,40}>/gi,
  },
  { kind: 'hidden_instructions', regex: /<\|(?:im_start|im_end|system|endoftext|assistant)\|>|\[\/?(?:INST|SYSTEM)\]|<<\/?SYS>>/g },
  {
    kind: 'hidden_instructions',
    regex:
      /\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other|original|system)\s+(?:instructions?|prompts?|rules|directions|guidelines|messages|directives)\b/gi,
  },
  {
    kind: 'hidden_instructions',
    regex: /\bnew\s+(?:system\s+)?instructions?\s*:|\bsystem\s+prompt\s*:|\byou\s+must\s+now\s+(?:act|behave|ignore)\b/gi,
  },
  // Keeping the user out of the loop.
  {
    kind: 'concealment',
    regex:
      /\b(?:do\s+not|don't|never|must\s+not|should\s+not|shouldn't)\s+(?:tell|inform|mention|reveal|show|disclose|notify|alert|let)\b[^.\n]{0,40}?\b(?:user|human|operator|anyone)\b/gi,
  },
  { kind: 'concealment', regex: /\b(?:do\s+not|don't|never)\s+(?:mention|reveal|disclose)\s+(?:this|that|it|these|anything)\b/gi },
  {
    kind: 'concealment',
    regex: /\bwithout\s+(?:telling|informing|notifying|alerting|asking|showing)\s+(?:the\s+)?(?:user|human|operator)\b/gi,
  },
  {
    kind: 'concealment',
    regex: /\b(?:hide|conceal)\s+(?:this|it|that|these|the)\b[^.\n]{0,40}?\bfrom\s+(?:the\s+)?(?:user|human|operator)\b/gi,
  },
  {
    kind: 'concealment',
    regex:
      /\b(?:the\s+)?user\s+(?:must|should|does|need)\s*(?:not|n't)\s+(?:to\s+)?(?:know|see|be\s+told|notice|find\s+out|be\s+aware)\b/gi,
  },
  {
    kind: 'concealment',
    regex:
      /\b(?:silently|secretly|covertly|quietly)\s+(?:send|include|append|add|forward|upload|read|copy|exfiltrate|pass|call|use|attach|collect)\b/gi,
  },
  // Reaching for credentials, keys and dotfiles.
  {
    kind: 'credential_access',
    regex:
      /(?:~|\$HOME|%USERPROFILE%|\/home\/[\w.-]{1,32}|\/root)?\/\.(?:ssh|aws|gnupg|kube|docker|azure|netrc|npmrc|pypirc|git-credentials|pgpass|bash_history|zsh_history|cursor|claude|config\/gcloud)\b/gi,
  },
  {
    kind: 'credential_access',
    regex:
      /\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\/etc\/(?:passwd|shadow|sudoers)\b|\b(?:mcp|claude_desktop_config|credentials|wallet|keychain)\.(?:json|dat|db)\b/gi,
  },
  { kind: 'credential_access', regex: /(?:^|[\s'"`(=:])\.env(?:\.[\w-]{1,20})?\b/gim },
  {
    kind: 'credential_access',
    regex:
      /\b(?:read|cat|open|load|send|pass|include|attach|upload|copy|forward|extract|exfiltrate|collect|provide|print|dump|leak|steal)\b[^.\n]{0,60}?\b(?:private\s+keys?|ssh\s+keys?|api[\s_-]?keys?|access\s+tokens?|auth(?:entication)?\s+tokens?|credentials|passwords?|secrets|seed\s+phrases?|mnemonics?|session\s+cookies?|environment\s+variables)\b/gi,
  },
];

/**
 * Zero-width and other invisible characters: every format character (\p{Cf}, as escapeText
 * treats them) but the bidi and tag ones, which have rules of their own; variation selectors,
 * Mongolian free variation selectors, the Khmer inherent vowels and fillers that render as nothing.
 */
const INVISIBLE =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: each code point is matched alone on purpose (a lone combining mark is the finding)
  /(?![\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u{E0000}-\u{E007F}])\p{Cf}|[\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u3164\uFFA0\u{E0100}-\u{E01EF}]|[\uFE00-\uFE0F]+/gu;
/** Bidirectional embeddings, overrides, isolates and marks: text that displays in another order than it reads. */
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** Unicode tag characters: invisible ASCII, the classic way to hide a prompt in plain sight. */
const TAGS = /[\u{E0000}-\u{E007F}]+/gu;
/** C0 controls but tab, newline and carriage return; DEL; C1 controls (U+009B is a one-character CSI). */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
const BASE64_RUN = /[A-Za-z0-9+/_-]{64,}={0,2}/g;
const HEX_RUN = /(?<![0-9A-Za-z])(?:[0-9a-fA-F]{2}){32,}(?![0-9A-Za-z])/g;
const EMOJI = /\p{Extended_Pictographic}/u;
const EMOJI_END = /\p{Extended_Pictographic}$/u;
/** A character a single U+FE0E/U+FE0F may ask to show as text or emoji (❤️, ©️, the 1 of 1️⃣). */
const EMOJI_BASE = /\p{Emoji}$/u;

export function scanText(text: string): RuleHit[] {
  const hits: RuleHit[] = [];
  charRule(text, INVISIBLE, 'invisible_characters', hits, (m, at) => !emojiPart(text, m, at));
  charRule(text, BIDI, 'bidi_control', hits);
  charRule(text, TAGS, 'tag_characters', hits, (m, at) => !isEmojiFlagTag(text, m, at));
  charRule(text, CONTROL, 'terminal_escape', hits);
  blobs(text, hits);
  const folded = fold(text);
  for (const { kind, regex } of PHRASES) {
    regex.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = regex.exec(folded)) !== null) {
      hits.push({ kind, index: m.index, length: m[0].length, folded: true });
      if (m[0].length === 0) regex.lastIndex++;
    }
  }
  return hits;
}

/** The text as the model effectively reads it: invisible characters gone, compatibility forms folded. */
export function fold(text: string): string {
  return text.replace(INVISIBLE, '').replace(TAGS, '').replace(BIDI, '').normalize('NFKC');
}

function charRule(
  text: string,
  regex: RegExp,
  kind: ToolFindingKind,
  hits: RuleHit[],
  keep?: (match: string, at: number) => boolean,
): void {
  regex.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = regex.exec(text)) !== null) {
    if (!keep || keep(m[0], m.index)) hits.push({ kind, index: m.index, length: m[0].length, folded: false });
  }
}

/** A ZWJ joining two pictographs, or one emoji/text presentation selector right after an emoji. */
function emojiPart(text: string, match: string, at: number): boolean {
  if (match === '\u200D') return joinsEmoji(text, at);
  return (match === '\uFE0E' || match === '\uFE0F') && EMOJI_BASE.test(text.slice(Math.max(0, at - 2), at));
}

/** ZWJ between two pictographs builds one emoji (👩‍💻): that is what it is for. */
function joinsEmoji(text: string, at: number): boolean {
  // Room for a pictograph, a skin tone and U+FE0F before the joiner (🏳️‍🌈, 👩🏽‍💻).
  const before = text.slice(Math.max(0, at - 5), at).replace(/(?:\uFE0F|[\u{1F3FB}-\u{1F3FF}])+$/u, '');
  const after = text.slice(at + 1, at + 3);
  return EMOJI_END.test(before) && EMOJI.test(after);
}

/** 🏴 followed by lower-case tag letters and CANCEL TAG is a subdivision flag (🏴󠁧󠁢󠁳󠁣󠁴󠁿). */
function isEmojiFlagTag(text: string, run: string, at: number): boolean {
  if (text.codePointAt(at - 2) !== 0x1f3f4) return false;
  const points = [...run].map((c) => c.codePointAt(0) as number);
  return (
    points.length <= 8 &&
    points[points.length - 1] === 0xe007f &&
    points.slice(0, -1).every((p) => (p >= 0xe0061 && p <= 0xe007a) || (p >= 0xe0030 && p <= 0xe0039))
  );
}

/**
 * Long base64 or hex runs. Base64 needs mixed case and a digit (a long identifier or path is not
 * a blob); a `data:image/…` URL is an image. Hex counts when it decodes to text (a hash does not)
 * or is longer than any hash.
 */
function blobs(text: string, hits: RuleHit[]): void {
  BASE64_RUN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = BASE64_RUN.exec(text)) !== null) {
    const run = m[0];
    if (!/[a-z]/.test(run) || !/[A-Z]/.test(run) || !/[0-9]/.test(run)) continue;
    if (/data:image\/[\w.+-]{1,40};base64,$/i.test(text.slice(Math.max(0, m.index - 60), m.index))) continue;
    const decoded = printable(Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
    hits.push({ kind: 'encoded_blob', index: m.index, length: run.length, folded: false, ...(decoded ? { decoded } : {}) });
  }
  HEX_RUN.lastIndex = 0;
  while ((m = HEX_RUN.exec(text)) !== null) {
    const decoded = printable(Buffer.from(m[0], 'hex'));
    if (decoded || m[0].length > 128)
      hits.push({ kind: 'encoded_blob', index: m.index, length: m[0].length, folded: false, ...(decoded ? { decoded } : {}) });
  }
}

/** The bytes as text when they are (almost all) printable UTF-8, else undefined. */
function printable(bytes: Uint8Array): string | undefined {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  let good = 0;
  for (const ch of text) if (/[\p{L}\p{N}\p{P}\p{S}\s]/u.test(ch) && ch !== '\uFFFD') good++;
  const total = [...text].length;
  return total > 0 && good / total >= 0.95 ? text : undefined;
}
