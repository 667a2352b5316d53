/**
 * Card numbers and IBANs: shapes that ordinary numbers and ids also have, so each candidate must
 * pass its checksum (and, for cards, a network's prefix and length) before it counts.
 */
import { cardPrefixValid, ibanChecksumValid, ibanLength, luhnValid } from './checksums.ts';
import { endsEscape, isAlnum, isDigit, isUpper, isWord, type Span } from './detector.ts';

/**
 * Every card starts, after a word boundary, with a digit 2–6 (the networks we know), and has at
 * least ten digits in its first three groups whatever the layout (4-4-4-4, 4-6-5, 4-6-4, compact).
 * This regex finds those starts cheaply; the rest of the candidate is read by hand. A regex for the
 * whole number retries at every digit of every number in the text (timestamps, amounts, hashes),
 * which costs several times more.
 */
const CARD_START = /\b[2-6][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{2}/g;
const MAX_DIGITS = 19;

export function findCards(text: string, out: Span[]): void {
  const starts = CARD_START;
  starts.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = starts.exec(text)) !== null) {
    const start = m.index;
    let runEnd = start + 4;
    while (runEnd < text.length && isDigit(text.charCodeAt(runEnd))) runEnd++;
    const before = start > 0 ? text.charCodeAt(start - 1) : 32;
    // Inside a longer token or number (a hash, an id, 0.4111…): not a card, nor is anything
    // else in this run of digits.
    if ((isWord(before) || before === 46) && !endsEscape(text, start - 1)) {
      starts.lastIndex = runEnd;
      continue;
    }
    const end = candidateEnd(text, start);
    const stop = acceptCard(text, start, end);
    if (stop > start) {
      out.push({ start, end: stop });
      starts.lastIndex = stop;
    } else {
      starts.lastIndex = runEnd;
    }
  }
}

/** Up to 19 digits from `start`, with single spaces or dashes between them. */
function candidateEnd(text: string, start: number): number {
  let digits = 0;
  let end = start;
  for (let i = start; i < text.length && digits < MAX_DIGITS; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      digits++;
      end = i + 1;
    } else if (!((c === 32 || c === 45) && i > start && isDigit(text.charCodeAt(i - 1)) && isDigit(text.charCodeAt(i + 1)))) {
      break;
    }
  }
  return end;
}

/**
 * A card number is printed either as one run of digits or in groups of four with one kind of
 * separator (Amex 4-6-5, Diners 4-6-4). Tries the longest run of whole groups that is a card, so
 * "4111 1111 1111 1111 2024" yields the card and leaves the year.
 */
export function acceptCard(text: string, start: number, end: number): number {
  const lengths: number[] = [];
  const stops: number[] = [];
  let digits = '';
  let sep = '';
  let run = 0;
  for (let i = start; i <= end; i++) {
    if (i < end && isDigit(text.charCodeAt(i))) {
      run++;
      continue;
    }
    digits += text.slice(i - run, i);
    lengths.push(run);
    stops.push(i);
    run = 0;
    if (i === end) break;
    const ch = text[i] as string;
    if (sep === '') sep = ch;
    else if (ch !== sep) return -1;
  }
  let count = digits.length;
  for (let k = lengths.length; k >= 1; k--) {
    if (k < lengths.length) count -= lengths[k] as number;
    if (count < 13) return -1;
    if (k > 1 && !groupedLikeACard(lengths, k)) continue;
    const stop = stops[k - 1] as number;
    if (!endsANumber(text, stop, k < lengths.length ? sep : '')) continue;
    const candidate = digits.slice(0, count);
    if (cardPrefixValid(candidate) && luhnValid(candidate)) return stop;
  }
  return -1;
}

/** The first `k` groups: fours with a shorter last one, or Amex 4-6-5 / Diners 4-6-4. */
function groupedLikeACard(lengths: readonly number[], k: number): boolean {
  const last = lengths[k - 1] as number;
  let fours = true;
  for (let i = 0; i < k - 1; i++) if (lengths[i] !== 4) fours = false;
  if (fours && last >= 1 && last <= 4) return true;
  return k === 3 && lengths[0] === 4 && lengths[1] === 6 && (last === 4 || last === 5);
}

/** The digits stop at `at`: no word character follows, nor a decimal part ("…1111.50"). */
function endsANumber(text: string, at: number, sep: string): boolean {
  if (at >= text.length) return true;
  const c = text.charCodeAt(at);
  if (isWord(c)) return false;
  if ((c === 46 || (c === 45 && sep !== '-')) && isDigit(text.charCodeAt(at + 1))) return false;
  return true;
}

/** Either compact or in groups of four separated by single spaces; length by country; mod 97. */
export function acceptIban(text: string, start: number, end: number): number {
  const length = ibanLength(text.slice(start, start + 2));
  if (length === undefined) return -1;
  const spaced = text[start + 4] === ' ';
  let compact = '';
  let i = start;
  while (compact.length < length && i < end) {
    const ch = text[i] as string;
    if (ch === ' ') {
      if (!spaced || compact.length % 4 !== 0) return -1;
    } else {
      compact += ch;
    }
    i++;
  }
  if (compact.length !== length) return -1;
  if (i < text.length && isAlnum(text.charCodeAt(i))) return -1; // runs on: not this IBAN
  for (let k = 0; k < compact.length; k++) if (!isAlnum(compact.charCodeAt(k))) return -1;
  if (!isUpper(compact.charCodeAt(0)) || !isDigit(compact.charCodeAt(2)) || !isDigit(compact.charCodeAt(3))) return -1;
  return ibanChecksumValid(compact) ? i : -1;
}
