import { TIMELINE_JS } from './client-timeline.ts';

/**
 * The report page's script, inlined and allowed by the CSP through its hash. It reads the model
 * from the JSON data block and builds every node with createElement/textContent: no recorded
 * string ever passes through an HTML parser. Plain ES2020, no template literals (this file is one).
 */
const PAGE_START = String.raw`
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PAGE = 200;
  var M = JSON.parse(document.getElementById('kavach-report-data').textContent);
  var rows = M.rows;

  // ---- small DOM helpers: text only, never markup ----
  // Characters that would act on the page instead of showing, or show as nothing: controls other
  // than line breaks and tabs, every format character (\p{Cf}: bidi marks, embeddings, overrides
  // and isolates reorder what a reviewer reads; zero-width ones hide), line and paragraph
  // separators, tag characters, fillers that render blank (admin\u3164 looks like admin) and
  // variation selectors. They are shown as \u escapes, as the CLI shows them in a terminal.
  var UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Cf}\u{e0000}-\u{e007f}\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;
  // One U+FE0E/U+FE0F right after an emoji asks for its text or emoji form (a red heart is U+2764 U+FE0F): kept.
  var EMOJI_END = /\p{Emoji}$/u;
  function vis(text) {
    return String(text).replace(UNSAFE, function (c, at, s) {
      if ((c === '\ufe0e' || c === '\ufe0f') && EMOJI_END.test(s.slice(Math.max(0, at - 2), at))) return c;
      var n = c.codePointAt(0);
      return n > 0xffff ? '\\u{' + n.toString(16) + '}' : '\\u' + ('000' + n.toString(16)).slice(-4);
    });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = vis(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = vis(text);
    return e;
  }
  /**
   * A name (principal, session, tool) that wraps where a reader expects: after . - _ / : @ and,
   * in a run of 24 characters without one, inside it; never mid-word otherwise. The places are
   * <wbr> elements, so the text itself is unchanged.
   */
  function nameEl(tag, cls, text) {
    var e = el(tag, cls);
    if (text === undefined || text === null) return e;
    var buf = '', run = 0;
    function brk() { if (buf) e.appendChild(document.createTextNode(buf)); buf = ''; run = 0; e.appendChild(document.createElement('wbr')); }
    for (var c of vis(text)) {
      buf += c; run++;
      if ('.-_/:@'.indexOf(c) >= 0 || run >= 24) brk();
    }
    if (buf) e.appendChild(document.createTextNode(buf));
    return e;
  }
  function add(parent) { for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]); return parent; }
  function tip(node, text) { node.appendChild(svg('title', null, text)); return node; }
  function fmtN(n) { return Number(n).toLocaleString('en-US'); }
  function pad(n, w) { var s = String(n); while (s.length < w) s = '0' + s; return s; }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    var d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1, 2) + '-' + pad(d.getUTCDate(), 2) + ' ' +
      pad(d.getUTCHours(), 2) + ':' + pad(d.getUTCMinutes(), 2) + ':' + pad(d.getUTCSeconds(), 2) + '.' + pad(d.getUTCMilliseconds(), 3);
  }
  function fmtShort(ms, width) {
    var s = fmtTime(ms);
    if (width >= 864e5) return s.slice(0, 10);
    if (width >= 6e4) return s.slice(5, 16);
    return s.slice(11, 19);
  }
  function fmtDur(ms) {
    if (ms < 1000) return ms + ' ms';
    if (ms < 6e4) return Math.round(ms / 1000) + ' s';
    if (ms < 36e5) return Math.round(ms / 6e4) + ' min';
    if (ms < 864e5) return Math.round(ms / 36e5) + ' h';
    return Math.round(ms / 864e5) + ' d';
  }
  function plural(n, one, many) { return fmtN(n) + ' ' + (n === 1 ? one : (many || one + 's')); }

  // ---- header ----
  var I = M.integrity;
  var bad = I.status === 'broken';
  document.title = (bad ? '[INTEGRITY BROKEN] ' : I.signed ? '[verified] ' : '[unsigned] ') + 'Kavach audit report';
  var t0 = null, t1 = null;
  rows.forEach(function (r) { if (typeof r.time !== 'number') return; if (t0 === null || r.time < t0) t0 = r.time; if (t1 === null || r.time > t1) t1 = r.time; });
  var meta = document.getElementById('meta');
  meta.textContent = vis(I.logs.map(function (g) { return g.source; }).join(', ') + ' · ' + fmtTime(t0) + ' → ' + fmtTime(t1) + ' UTC · generated ' + fmtTime(M.generatedAt) + ' UTC');

  // ---- integrity banner: state in words and colour, first thing on the page ----
  (function banner() {
    var b = document.getElementById('integrity');
    var warn = !bad && !I.signed;
    b.className = 'banner ' + (bad ? 'bad' : warn ? 'warn' : 'ok');
    b.setAttribute('data-status', I.status);
    b.textContent = '';
    add(b, el('div', 'icon', bad ? '✗' : warn ? '!' : '✓'));
    add(b, el('div', 'state', bad ? 'INTEGRITY BROKEN — do not trust this log past the break' : warn ? 'CHAIN INTACT — NOT YET SIGNED' : 'INTEGRITY VERIFIED'));
    // The state line says verified or broken; the headline's own first word would say it again.
    var said = I.headline.replace(/^Verified: (.)/, function (m, c) { return c.toUpperCase(); });
    add(b, el('div', 'headline', said));
    var ul = el('ul', 'logs');
    I.logs.forEach(function (g) {
      var li = el('li');
      add(li, el('span', 'k', g.source + ': '));
      var parts = [];
      parts.push(plural(g.records, 'record') + ' verified');
      var before = g.broken ? ' before the break' : '';
      if (g.checkpoints === 0) parts.push('NO signed checkpoint' + before + ': ' + plural(g.unsealed, 'record') + ' only hash-chained');
      else {
        parts.push(plural(g.checkpoints, 'signed checkpoint') + before + (g.kids.length ? ' (key ' + g.kids.join(', ') + ')' : ''));
        if (g.lastCheckpoint) parts.push('last checkpoint at seq ' + g.lastCheckpoint.seq + ' (' + fmtTime(g.lastCheckpoint.time) + ')');
        parts.push(g.unsealed > 0 ? plural(g.unsealed, 'record') + ' after the last checkpoint: chained but not yet signed (unsealed)' : 'nothing unsealed');
      }
      parts.push('mode ' + (g.mode || '—'));
      if (g.logId) parts.push('log ' + g.logId);
      parts.push(g.anchored ? 'seal file matches' : 'no seal file checked');
      if (g.files.length > 1) parts.push(plural(g.files.length, 'segment'));
      if (g.recoveries > 0) parts.push(plural(g.recoveries, 'crash recovery', 'crash recoveries'));
      add(li, el('span', null, parts.join(' · ')));
      if (g.tornTailBytes > 0) add(li, el('div', 'warn', 'Torn tail: ' + g.tornTailBytes + ' bytes at the end of the log (a crash; cut when the log is next opened).'));
      if (g.broken) {
        var box = el('div', 'breakbox');
        box.setAttribute('data-index', String(g.broken.index));
        box.textContent = vis((g.broken.index >= 0 ? 'Broken at record ' + g.broken.index : 'Broken') + ' [' + g.broken.code + ']: ' + g.broken.reason +
          (g.broken.file ? ' (' + g.broken.file + (g.broken.line ? ' line ' + g.broken.line : '') + ')' : ''));
        add(li, box);
        if (g.unverified > 0) add(li, el('div', 'warn', plural(g.unverified, 'record') + ' from the break on are shown below marked UNVERIFIED: they may be forged.'));
      }
      ul.appendChild(li);
    });
    b.appendChild(ul);
  })();

  // ---- totals ----
  (function cards() {
    var T = M.summary.totals;
    var c = document.getElementById('cards');
    function card(n, label, cls, key) {
      var d = el('div', 'card ' + (cls || ''));
      if (key) d.setAttribute('data-card', key);
      add(d, el('div', 'n', fmtN(n)), el('div', 'l', label));
      c.appendChild(d);
    }
    card(T.calls, 'tool calls (one that waited for an approval counts once)');
    card(T.permits, 'permitted', 'permit');
    card(T.refusals, 'refused', 'refuse');
    card(T.invalidations, 'invalidated (drift)', 'inval');
    card(T.wouldBlock, 'observe mode: would block', 'would');
    card(T.sessions, 'sessions' + (T.unsessioned ? ' (+ ' + plural(T.unsessioned, 'record') + ' naming none)' : ''), '', 'sessions');
    card(T.principals, 'principals');
    card(T.reloads, 'policy reloads' + (T.failedReloads ? ' (' + T.failedReloads + ' failed)' : ''), 'reload');
    card(T.drift, 'drift events', 'inval');
    var A = T.approvals;
    if (A.requests) {
      card(A.requests, A.requests === 1 ? 'approval request' : 'approval requests', 'approval', 'approvals');
      card(A.pending, 'approvals pending', A.pending ? 'would' : 'quiet', 'approvals-pending');
      card(A.denied, 'approvals denied', A.denied ? 'refuse' : 'quiet', 'approvals-denied');
    }
    if (T.unverified) card(T.unverified, 'UNVERIFIED records', 'refuse');
  })();

  // ---- charts (inline SVG) ----
  function legend(items) {
    var d = el('div', 'legend');
    items.forEach(function (i) { d.appendChild(el('span', i[0], i[1])); });
    return d;
  }
  function hbars(host, items, opts) {
    opts = opts || {};
    if (!items.length) { host.appendChild(el('div', 'empty', opts.empty || 'none')); return; }
    var W = 440, labelW = 172, rowH = 22, H = items.length * rowH + 4;
    var max = 1;
    items.forEach(function (i) { var v = i.total !== undefined ? i.total : i.count; if (v > max) max = v; });
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': opts.label || '' });
    s.style.maxWidth = (W * 1.25) + 'px';
    items.forEach(function (it, k) {
      var y = k * rowH + 2;
      var name = it.name.length > 22 ? it.name.slice(0, 21) + '…' : it.name;
      tip(add(s, svg('text', { x: labelW - 6, y: y + 13, 'text-anchor': 'end' }, name)), it.name);
      var x = labelW, full = W - labelW - 50;
      var segs = it.segs || [[opts.cls || 'f-bar', it.count, '']];
      var total = 0;
      segs.forEach(function (sg) {
        if (!sg[1]) return;
        var w = Math.max(1, sg[1] / max * full);
        tip(add(s, svg('rect', { x: x, y: y + 3, width: w, height: rowH - 7, rx: 2, 'class': sg[0] })), it.name + ': ' + fmtN(sg[1]) + (sg[2] ? ' ' + sg[2] : ''));
        x += w; total += sg[1];
      });
      add(s, svg('text', { x: x + 5, y: y + 13, 'class': 'tick' }, fmtN(total)));
    });
    host.appendChild(s);
  }
  /** A round axis maximum (1, 2, 4, 5, 10, 20, 40, 50, ...) divisible into whole ticks. */
  function niceMax(v) {
    if (v <= 4) return v;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var c = [1, 2, 4, 5, 10];
    for (var i = 0; i < c.length; i++) if (c[i] * p >= v) return c[i] * p;
    return 10 * p;
  }
  function overTime(host) {
    var B = M.summary.verdictsOverTime, width = M.summary.bucketMs;
    if (!B.length) { host.appendChild(el('div', 'empty', 'no tool calls recorded')); return; }
    var W = 1200, H = 210, L = 44, R = 10, T = 14, Bm = 26;
    var top = 1;
    B.forEach(function (b) { var t = b.permit + b.refuse + b.invalidate + b.wouldBlock; if (t > top) top = t; });
    var max = niceMax(top);
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': 'verdicts over time' });
    var iw = W - L - R, ih = H - T - Bm, bw = iw / B.length;
    var lo = B[0].start, hi = B[B.length - 1].end;
    var steps = max <= 4 ? max : max % 4 === 0 ? 4 : max % 5 === 0 ? 5 : 2;
    for (var g = 0; g <= steps; g++) {
      var gy = T + ih - ih * g / steps;
      add(s, svg('line', { x1: L, x2: W - R, y1: gy, y2: gy, 'class': g ? 'grid' : 'axis' }));
      add(s, svg('text', { x: L - 6, y: gy + 4, 'text-anchor': 'end', 'class': 'tick' }, fmtN(max * g / steps)));
    }
    B.forEach(function (b, i) {
      var x = L + i * bw + Math.min(2, bw * 0.1), w = Math.max(1, bw - Math.min(4, bw * 0.2)), y = T + ih;
      [['f-permit', b.permit, 'permitted'], ['f-would', b.wouldBlock, 'would block (observe mode)'], ['f-refuse', b.refuse, 'refused'], ['f-inval', b.invalidate, 'invalidated']].forEach(function (sg) {
        if (!sg[1]) return;
        var h = sg[1] / max * ih;
        y -= h;
        tip(add(s, svg('rect', { x: x, y: y, width: w, height: h, 'class': sg[0] })), fmtTime(b.start) + ' – ' + fmtTime(b.end) + ' UTC: ' + fmtN(sg[1]) + ' ' + sg[2]);
      });
    });
    var ticks = Math.min(B.length, 8), step = Math.max(1, Math.round(B.length / ticks));
    for (var k = 0; k < B.length; k += step) {
      if (L + k * bw > W - R - 70) break;
      add(s, svg('text', { x: L + k * bw, y: H - 8, 'class': 'tick' }, fmtShort(B[k].start, width)));
    }
    function xOf(t) { return L + (t - lo) / (hi - lo) * iw; }
    M.summary.markers.forEach(function (m) {
      if (m.time < lo || m.time > hi) return;
      var x = xOf(m.time), r = rows[m.rowId];
      var what = m.kind === 'reload' ? 'policy reload' : m.kind === 'failed-reload' ? 'FAILED policy reload' : m.kind === 'drift' ? 'drift' : 'invalidation';
      var label = fmtTime(m.time) + ' UTC: ' + what + (r && (r.detail || r.reason) ? ' — ' + (r.reason || r.detail) : '');
      if (m.kind === 'reload' || m.kind === 'failed-reload') tip(add(s, svg('line', { x1: x, x2: x, y1: T - 6, y2: T + ih, 'class': m.kind === 'reload' ? 's-reload' : 's-failed' })), label);
      else tip(add(s, svg('path', { d: 'M' + (x - 5) + ' ' + (T - 12) + 'h10l-5 8z', 'class': 'f-drift' })), label);
    });
    host.appendChild(s);
    host.appendChild(legend([['permit', 'permitted'], ['refuse', 'refused'], ['inval', 'invalidated'], ['would', 'observe mode: would block'], ['reload', 'policy reload'], ['drift', 'drift / invalidation']]));
    host.appendChild(el('div', 'muted', 'bucket: ' + fmtDur(width) + ' · times in UTC · hover for counts'));
  }
  (function charts() {
    var S = M.summary;
    overTime(document.getElementById('chart-time'));
    hbars(document.getElementById('chart-codes'), S.refusalsByCode, { cls: 'f-refuse', empty: 'no refusals', label: 'refusals by code' });
    hbars(document.getElementById('chart-tools'), S.refusalsByTool, { cls: 'f-refuse', empty: 'no refusals', label: 'refusals by tool' });
    hbars(document.getElementById('chart-principals'), S.topPrincipals.map(function (p) {
      return { name: p.name, total: p.calls, segs: [['f-permit', p.permits - p.wouldBlock, 'permitted'], ['f-would', p.wouldBlock, 'would block'], ['f-refuse', p.refusals, 'refused'], ['f-inval', p.invalidations, 'invalidated']] };
    }), { empty: 'no calls', label: 'top principals' });
    if (S.topPrincipals.length) document.getElementById('chart-principals').appendChild(legend([['permit', 'permitted'], ['would', 'would block'], ['refuse', 'refused'], ['inval', 'invalidated']]));
    var ob = document.getElementById('chart-observe');
    var O = S.observe;
    if (!O.observed) ob.appendChild(el('div', 'empty', 'no observe-mode records: every verdict in this report was enforced'));
    else {
      var p = el('p', 'observe-lead');
      add(p, el('span', null, 'Of '), el('b', null, fmtN(O.observed)), el('span', null, ' calls evaluated in observe mode (all were let through), enforcement would have blocked '), el('b', null, fmtN(O.wouldBlock)), el('span', null, '.'));
      ob.appendChild(p);
      var grid = el('div', 'charts');
      [['by code', O.byCode], ['by tool', O.byTool], ['by principal', O.byPrincipal]].forEach(function (x) {
        var d = el('div'); d.appendChild(el('h3', null, 'Would block ' + x[0]));
        hbars(d, x[1], { cls: 'f-would', empty: 'nothing', label: 'would block ' + x[0] });
        grid.appendChild(d);
      });
      ob.appendChild(grid);
    }
  })();

  // ---- indexes for sessions and filters ----
  var bySession = {};
  var contextRows = []; // log-wide events marked on every session's timeline: reloads, global invalidations
  rows.forEach(function (r) {
    if (r.kind === 'reload' || (r.kind === 'invalidation' && r.session === undefined && r.principal === undefined)) contextRows.push(r);
    if (r.kind !== 'call' && r.kind !== 'outcome' && r.kind !== 'approval' && r.kind !== 'invalidation') return;
    if (r.kind === 'invalidation' && r.session === undefined) return;
    var k = r.session === undefined ? '\u0000' : 'S' + r.session;
    (bySession[k] = bySession[k] || []).push(r);
  });

  var approvalOf = {};
  M.approvals.forEach(function (a) { approvalOf['A' + a.id] = a; });
  function approvalFor(r) { return r.approval === undefined ? undefined : approvalOf['A' + r.approval]; }

  // ---- sessions ----
  function freshFilters() { return { session: -1, principal: -1, tool: -1, verdict: '', q: '', approval: null, checkpoints: false, page: 0 }; }
  var F = freshFilters();
  function attention(s) { return s.invalidations * 1000 + s.drift * 500 + s.approvalsPending * 50 + s.refusals * 10 + s.approvalsDenied * 10 + s.wouldBlock; }
  var sessionsShown = 40;
  var sessionSort = 'attention';
  function callClass(r) { return r.wouldBlock ? 'would' : r.observed ? 'permit' : r.verdict === 'invalidate' ? 'invalidate' : r.verdict; }
  function sessionRows(id) { return bySession[id === null ? '\u0000' : 'S' + id] || []; }
  /** A session's calls on its own time axis: dots while few, a stacked histogram when many. */
  /** Recorded times are any finite number; on an axis they are pinned to the Date range, so a span is finite. */
  function onAxis(t) { return Math.min(8.64e15, Math.max(-8.64e15, t)); }
  function lane(s, W, H, detailed) {
    var list = sessionRows(s.id).filter(function (r) { return r.kind === 'call' && r.time !== null; });
    var lo = onAxis(s.first), hi = onAxis(s.last), pad = 5;
    var e = svg('svg', { width: detailed ? '100%' : W, height: H, viewBox: '0 0 ' + W + ' ' + H, 'class': 'lane', role: 'img', 'aria-label': 'calls of the session over time' });
    function x(t) { return hi > lo ? pad + (onAxis(t) - lo) / (hi - lo) * (W - 2 * pad) : W / 2; }
    add(e, svg('line', { x1: 0, x2: W, y1: H - 2, y2: H - 2, 'class': 'axis' }));
    contextRows.forEach(function (c) {
      if (c.time === null || c.time < lo || c.time > hi || c.kind !== 'reload') return;
      tip(add(e, svg('line', { x1: x(c.time), x2: x(c.time), y1: 0, y2: H, 'class': c.failed ? 's-failed' : 's-reload' })), (c.failed ? 'FAILED policy reload ' : 'policy reload ') + fmtTime(c.time) + ' UTC');
    });
    if (list.length <= (detailed ? 400 : 40)) {
      list.forEach(function (r) {
        var cls = callClass(r), big = cls !== 'permit';
        var h = big ? H - 4 : (H - 4) / 2;
        var node = add(e, svg('rect', { x: x(r.time) - (big ? 1.5 : 1), y: H - 2 - h, width: big ? 3 : 2, height: h, 'class': 'dot-' + cls }));
        if (detailed) tip(node, fmtTime(r.time) + ' UTC · ' + (r.tool || '') + ' · ' + cls.toUpperCase() + (r.code ? ' ' + r.code : ''));
      });
    } else {
      var n = detailed ? 120 : 36, bins = [], max = 1, i;
      for (i = 0; i < n; i++) bins.push({ permit: 0, would: 0, refuse: 0, invalidate: 0 });
      list.forEach(function (r) { var k = hi > lo ? Math.max(0, Math.min(n - 1, Math.floor((onAxis(r.time) - lo) / (hi - lo) * n))) : 0; bins[k][callClass(r)]++; });
      bins.forEach(function (b) { var t = b.permit + b.would + b.refuse + b.invalidate; if (t > max) max = t; });
      var bw = (W - 2 * pad) / n;
      bins.forEach(function (b, k) {
        var y = H - 2;
        ['permit', 'would', 'refuse', 'invalidate'].forEach(function (c) {
          if (!b[c]) return;
          var h = b[c] / max * (H - 4);
          y -= h;
          var node = add(e, svg('rect', { x: pad + k * bw, y: y, width: Math.max(1, bw - 0.5), height: h, 'class': 'dot-' + c }));
          if (detailed) tip(node, fmtN(b[c]) + ' ' + c);
        });
      });
    }
    // Approval events above the axis: a request, its decisions, its use or expiry.
    if (detailed) sessionRows(s.id).forEach(function (r) {
      if (r.kind !== 'approval' || r.time === null) return;
      var cx = x(r.time), cls = r.event === 'denied' ? 'f-refuse' : r.event === 'requested' ? 'f-would' : r.event === 'granted' || r.event === 'used' ? 'f-permit' : 'f-bar';
      tip(add(e, svg('path', { d: 'M' + cx + ' 0l5 5-5 5-5-5z', 'class': cls + ' apr-mark' })), 'approval ' + String(r.event) + ' ' + fmtTime(r.time) + ' UTC' + (r.approver !== undefined ? ' by ' + r.approver : ''));
    });
    list.forEach(function (r) {
      if (!r.drift) return;
      tip(add(e, svg('path', { d: 'M' + (x(r.time) - 5) + ' 0h10l-5 8z', 'class': 'f-drift' })), 'drift ' + fmtTime(r.time) + ' UTC: ' + (r.reason || ''));
    });
    return e;
  }
  /** Above the timeline when one session is selected: who, how many, and its calls on a time axis. */
  function sessionFocus(id) {
    var host = document.getElementById('session-focus');
    host.textContent = '';
    if (id === undefined) { host.hidden = true; return; }
    var s = null;
    M.sessions.forEach(function (x) { if (x.id === id) s = x; });
    if (s === null) { host.hidden = true; return; }
    host.hidden = false;
    var h = el('div', 'focus-head');
    add(h, s.id === null ? el('span', 'focus-id', '(no session)') : nameEl('span', 'focus-id', s.id), el('span', 'muted', ' · ' + s.principals.join(', ') + ' · ' + fmtTime(s.first) + ' → ' + fmtTime(s.last) + ' UTC'));
    host.appendChild(h);
    var facts = el('div', 'focus-facts');
    var shown = [[s.calls, 'calls', ''], [s.refusals, 'refused', 'hot'], [s.invalidations, 'invalidated', 'hot-inval'], [s.wouldBlock, 'would block', 'hot-would'], [s.drift, 'drift', 'hot-inval']];
    if (s.approvals) shown.push([s.approvals, s.approvals === 1 ? 'approval request' : 'approval requests', ''], [s.approvalsPending, 'pending', 'hot-would'], [s.approvalsDenied, 'denied', 'hot']);
    shown.forEach(function (f) {
      add(facts, el('span', f[0] ? f[2] : 'zero', fmtN(f[0]) + ' ' + f[1]));
    });
    host.appendChild(facts);
    host.appendChild(lane(s, 1200, 44, true));
  }
  function renderSessions() {
    var host = document.getElementById('sessions-body');
    host.textContent = '';
    var list = M.sessions.slice();
    if (sessionSort === 'attention') list.sort(function (a, b) { return attention(b) - attention(a) || (a.first || 0) - (b.first || 0); });
    list.slice(0, sessionsShown).forEach(function (s) {
      var tr = el('tr', (attention(s) > 0 ? 'attention' : '') + (s.id === null ? ' no-session' : ''));
      var idCell = s.id === null ? el('td', 'cell-id none', '(no session)') : nameEl('td', 'cell-id', s.id);
      var pr = el('td', 'cell-id');
      s.principals.slice(0, 3).forEach(function (p, i) { if (i) pr.appendChild(document.createTextNode(', ')); pr.appendChild(nameEl('span', 'name', p)); });
      if (s.principals.length > 3) pr.appendChild(document.createTextNode(' +' + (s.principals.length - 3)));
      var apr = el('td', 'num apr ' + (s.approvals ? '' : 'zero'), fmtN(s.approvals));
      if (s.approvalsPending) apr.appendChild(el('div', 'hot-would', fmtN(s.approvalsPending) + ' pending'));
      if (s.approvalsDenied) apr.appendChild(el('div', 'hot', fmtN(s.approvalsDenied) + ' denied'));
      function num(n, hot) { return el('td', 'num ' + (n ? hot || '' : 'zero'), fmtN(n)); }
      var laneCell = el('td'); laneCell.appendChild(lane(s, 180, 18, false));
      add(tr, idCell, pr, el('td', 'mono muted', fmtTime(s.first).slice(5) + ' → ' + (s.last !== null ? fmtTime(s.last).slice(11) : '')),
        num(s.calls), num(s.refusals, 'hot'), num(s.invalidations, 'hot-inval'), num(s.wouldBlock, 'hot-would'), num(s.drift, 'hot-inval'), apr, laneCell);
      clickable(tr, function () {
        var i = s.id === null ? -2 : M.facets.sessions.indexOf(s.id);
        F.session = i; F.approval = null; F.page = 0;
        document.getElementById('f-session').value = String(i);
        renderTimeline();
        document.getElementById('timeline').scrollIntoView({ behavior: 'auto', block: 'start' });
      });
      host.appendChild(tr);
    });
    var more = document.getElementById('sessions-more');
    more.textContent = '';
    if (list.length > sessionsShown) {
      var b = el('button', 'more', 'show all ' + fmtN(list.length) + ' sessions');
      b.addEventListener('click', function () { sessionsShown = list.length; renderSessions(); });
      more.appendChild(b);
    }
    var named = M.summary.totals.sessions, none = M.summary.totals.unsessioned;
    document.getElementById('sessions-count').textContent = plural(named, 'session') + (none ? ', and ' + plural(none, 'record') + ' that named no session' : '') + (sessionSort === 'attention' ? ' · those with invalidations, drift and refusals first' : ' · in order of first call');
  }
  document.getElementById('sessions-sort').addEventListener('change', function (e) { sessionSort = e.target.value; renderSessions(); });
  renderSessions();

`;

/** The whole script: the page's set-up and sessions here, its filters and timeline in client-timeline.ts (one scope). */
export const REPORT_JS = `${PAGE_START}${TIMELINE_JS}})();\n`;
