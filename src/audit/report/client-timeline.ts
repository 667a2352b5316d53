/**
 * The report script's filters and timeline (see client.ts): text spliced into the same function
 * scope as the rest of REPORT_JS, so it uses that part's helpers and state (el, F, rows, M...).
 * Plain ES2020, no template literals (this file is one).
 */
export const TIMELINE_JS = String.raw`  // ---- filters ----
  function fillSelect(id, values, noneLabel) {
    var s = document.getElementById(id);
    s.appendChild(add(el('option', null, 'all'), null)).value = '-1';
    if (noneLabel) { var o = el('option', null, noneLabel); o.value = '-2'; s.appendChild(o); }
    values.forEach(function (v, i) { var o = el('option', null, v.length > 60 ? v.slice(0, 59) + '…' : v); o.value = String(i); o.title = vis(v); s.appendChild(o); });
  }
  fillSelect('f-session', M.facets.sessions, '(no session)');
  fillSelect('f-principal', M.facets.principals);
  fillSelect('f-tool', M.facets.tools);
  ['session', 'principal', 'tool'].forEach(function (k) {
    document.getElementById('f-' + k).addEventListener('change', function (e) {
      F[k] = Number(e.target.value); F.page = 0;
      if (k === 'session') F.approval = null; // choosing a session leaves the one approval's records
      renderTimeline();
    });
  });
  document.getElementById('f-verdict').addEventListener('change', function (e) { F.verdict = e.target.value; F.page = 0; renderTimeline(); });
  var qTimer = null;
  document.getElementById('f-q').addEventListener('input', function (e) {
    clearTimeout(qTimer);
    var v = e.target.value;
    qTimer = setTimeout(function () { F.q = v.trim().toLowerCase(); F.page = 0; renderTimeline(); }, 120);
  });
  var checkpointToggle = document.getElementById('f-checkpoints');
  checkpointToggle.addEventListener('change', function (e) { F.checkpoints = e.target.checked; F.page = 0; renderTimeline(); });
  document.getElementById('f-reset').addEventListener('click', function () {
    F = freshFilters();
    checkpointToggle.checked = false;
    ['f-session', 'f-principal', 'f-tool'].forEach(function (id) { document.getElementById(id).value = '-1'; });
    document.getElementById('f-verdict').value = '';
    document.getElementById('f-q').value = '';
    renderTimeline();
  });

  var hay = [];
  function haystack(r) {
    if (hay[r.id] === undefined) {
      var parts = [r.type, r.session, r.principal, r.tool, r.verdict, r.code, r.reason, r.detail, r.evaluator, r.policy, r.approval, r.event, r.status, r.approver, r.note, r.wouldBlock ? 'would block observe' : '', r.drift ? 'drift' : '', r.trust, String(r.seq)];
      var ex = ''; try { ex = JSON.stringify(r.extra); } catch (err) { ex = ''; }
      hay[r.id] = (parts.filter(function (p) { return p !== undefined && p !== null; }).join('\n') + '\n' + ex).toLowerCase();
    }
    return hay[r.id];
  }
  function verdictMatch(r, v) {
    if (!v) return true;
    if (v === 'problems') return r.kind === 'call' && !r.observed && r.verdict !== 'permit' || r.kind === 'invalidation' || !!r.wouldBlock || !!r.drift || !!r.failed;
    if (v === 'would') return !!r.wouldBlock;
    if (v === 'events') return r.kind !== 'call';
    if (v === 'approvals') return r.kind === 'approval' || r.approval !== undefined;
    if (v === 'approvals-open') { var a = approvalFor(r); return !!a && (a.status === 'pending' || a.status === 'denied'); }
    if (v === 'unverified') return r.trust === 'unverified';
    if (r.kind !== 'call') return false;
    if (v === 'permit') return !r.wouldBlock && (r.verdict === 'permit' || !!r.observed);
    return !r.observed && r.verdict === v;
  }
  var folded = 0; // checkpoint rows the last filtering left out (shown with the toggle)
  function filtered() {
    var sess = F.session === -1 ? null : F.session === -2 ? undefined : M.facets.sessions[F.session];
    var prin = F.principal === -1 ? null : M.facets.principals[F.principal];
    var tool = F.tool === -1 ? null : M.facets.tools[F.tool];
    var base = rows;
    if (sess !== null) base = bySession[sess === undefined ? '\u0000' : 'S' + sess] || [];
    var chosen = F.approval === null ? undefined : approvalOf['A' + F.approval];
    if (chosen) base = chosen.rowIds.map(function (id) { return rows[id]; });
    var out = [];
    var lo = null, hi = null;
    folded = 0;
    for (var i = 0; i < base.length; i++) {
      var r = base[i];
      if (r.kind === 'checkpoint' && !F.checkpoints) { folded++; continue; }
      if (prin !== null && r.principal !== prin) continue;
      if (tool !== null && r.tool !== tool) continue;
      if (!verdictMatch(r, F.verdict)) continue;
      if (F.q && haystack(r).indexOf(F.q) < 0) continue;
      out.push(r);
      if (r.time !== null) { if (lo === null || r.time < lo) lo = r.time; if (hi === null || r.time > hi) hi = r.time; }
    }
    // A narrowed timeline still marks the policy reloads and global invalidations inside its span.
    var narrowed = (sess !== null || prin !== null || tool !== null) && !chosen;
    if (narrowed && !F.q && (!F.verdict || F.verdict === 'events' || F.verdict === 'problems') && lo !== null) {
      var ctx = contextRows.filter(function (c) { return c.time !== null && c.time >= lo && c.time <= hi && verdictMatch(c, F.verdict); });
      if (ctx.length) out = out.concat(ctx).sort(function (a, b) { return a.id - b.id; });
    }
    return out;
  }

  // ---- timeline ----
  function verdictBadge(r) {
    if (r.kind === 'call') {
      if (r.wouldBlock) return el('span', 'badge b-would', 'WOULD ' + (r.verdict === 'invalidate' ? 'INVALIDATE' : 'REFUSE') + ' · observe');
      if (r.observed) return el('span', 'badge b-permit', 'PERMIT · observe');
      if (r.verdict === 'permit') return el('span', 'badge b-permit', 'PERMIT');
      // Settled later by the same call asked again: counted once, as that later call.
      if (r.verdict === 'refuse') return el('span', 'badge b-refuse', r.settledBy !== undefined ? 'REFUSE · asked again once decided' : 'REFUSE');
      if (r.verdict === 'invalidate') return el('span', 'badge b-invalidate', 'INVALIDATE');
      return el('span', 'badge b-event', '?');
    }
    if (r.kind === 'reload') return el('span', 'badge ' + (r.failed ? 'b-failed' : 'b-reload'), r.failed ? 'RELOAD FAILED' : 'POLICY RELOAD');
    if (r.kind === 'invalidation') return el('span', 'badge b-invalidate', 'INVALIDATION');
    if (r.kind === 'outcome') return el('span', 'badge b-event', 'OUTCOME ' + (r.outcome || ''));
    if (r.kind === 'approval') return el('span', 'badge b-apr b-apr-' + (/^[a-z]+$/.test(r.event || '') ? r.event : 'other'), 'APPROVAL ' + String(r.event || '?').toUpperCase());
    return el('span', 'badge b-event', String(r.type).toUpperCase());
  }
  function rowClass(r) {
    var c = 'row k-' + r.kind;
    if (r.kind === 'call') c += r.wouldBlock ? ' v-would' : r.observed ? '' : ' v-' + r.verdict;
    if (r.kind === 'invalidation') c += ' v-invalidate';
    if (r.kind === 'approval') c += ' e-' + (r.event === 'denied' || r.event === 'requested' || r.event === 'expired' ? r.event : 'approval');
    if (r.failed) c += ' failed';
    if (r.trust === 'unverified') c += ' untrusted';
    return c;
  }
  function detailRow(r) {
    var tr = el('tr', 'detail');
    var td = el('td'); td.colSpan = 8;
    var dl = el('dl', 'kv');
    function kv(k, v) { if (v === undefined || v === null || v === '') return; add(dl, el('dt', null, k), el('dd', null, typeof v === 'string' ? v : JSON.stringify(v, null, 2))); }
    kv('integrity', r.trust === 'sealed' ? 'sealed: covered by a verified checkpoint signature' : r.trust === 'unsealed' ? 'unsealed: chained, after the last signed checkpoint' : 'UNVERIFIED: at or after the break; may be forged');
    kv('log', M.integrity.logs[r.log] ? M.integrity.logs[r.log].source : String(r.log));
    kv('chain index', String(r.index));
    kv('type', r.type);
    kv('time', r.time === null ? null : fmtTime(r.time) + ' UTC (' + r.time + ')');
    kv('session', r.session === undefined ? undefined : r.session + (r.sessionFrom === 'evaluation' ? '   (not in this record: the session of its evaluation\'s verdict)' : r.sessionFrom === 'approval' ? '   (not in this record: the session of its approval request)' : ''));
    kv('principal', r.principal); kv('tool', r.tool);
    kv('approval', r.approval); kv('event', r.event); kv('status after', r.status); kv('approver', r.approver); kv('note', r.note);
    kv('verdict', r.verdict); kv('observed', r.observed ? 'yes: the caller was permitted; the verdict is what enforcement would have said' : null);
    kv('code', r.code); kv('evaluator', r.evaluator); kv('policy', r.policy); kv('reason', r.reason); kv('detail', r.detail);
    Object.keys(r.extra).sort().forEach(function (k) { kv(k, r.extra[k]); });
    td.appendChild(dl);
    var a = approvalFor(r);
    if (a) td.appendChild(approvalChain(a, r.id));
    tr.appendChild(td);
    return tr;
  }
  var STATUS_WORDS = { pending: 'PENDING: waiting for a decision', granted: 'GRANTED: usable', denied: 'DENIED', expired: 'EXPIRED', used: 'USED' };
  function approvalStatus(a) {
    return (STATUS_WORDS[a.status] || a.status) + (a.lapsed ? ' (its time ran out ' + fmtTime(a.expiresAt) + ' UTC; no record says so)' : '');
  }
  /** One request's records in order, linked by its id: requested → decisions → uses / expiry, and the calls naming it. */
  function approvalChain(a, here) {
    var box = el('div', 'chain');
    var head = el('div', 'chain-head');
    add(head, el('span', 'muted', 'approval '), el('span', 'mono', a.id), el('span', 'badge b-st b-st-' + a.status, approvalStatus(a)));
    // Records at or after a break may be forged: listed, marked, and not counted in the status.
    var untrusted = a.rowIds.filter(function (id) { return rows[id].trust === 'unverified'; }).length;
    if (untrusted > 0) add(head, el('span', 'badge b-unverified', plural(untrusted, 'record') + ' UNVERIFIED, not counted'));
    box.appendChild(head);
    var ol = el('ol');
    a.rowIds.forEach(function (id) {
      var r = rows[id];
      var li = el('li', id === here ? 'here' : '');
      add(li, el('span', 'mono muted', fmtTime(r.time).slice(11) + ' '));
      if (r.trust === 'unverified') add(li, el('span', 'badge b-unverified', 'UNVERIFIED'), el('span', null, ' '));
      else if (r.trust === 'unsealed') add(li, el('span', 'badge b-unsealed', 'unsealed'), el('span', null, ' '));
      if (r.kind === 'approval') {
        var who = r.approver !== undefined ? ' by ' + r.approver : r.event === 'requested' ? ' by ' + (r.principal || '?') + ' for ' + (r.tool || '?') : r.event === 'used' ? ' by the call below' : '';
        if (r.event === 'granted' && r.status === 'pending') who += ' (more approvers must grant)';
        add(li, el('b', null, String(r.event || '?')), el('span', null, who));
        if (r.note !== undefined) add(li, el('span', 'muted', ' · note: '), el('span', 'note-text', r.note));
      } else {
        var said = r.wouldBlock ? 'observed (would be refused)' : r.observed ? 'observed, let through' : r.verdict === 'permit' ? 'permitted' : r.verdict === 'refuse' ? 'refused' : String(r.verdict || '?');
        add(li, el('span', null, 'call ' + said + (r.code ? ' ' + r.code : '')));
      }
      ol.appendChild(li);
    });
    box.appendChild(ol);
    return box;
  }
  /** A button naming an approval: shows that request's records, and its chain above the timeline. */
  function approvalChip(id) {
    var b = el('button', 'apr-link', 'approval ' + (id.length > 8 ? id.slice(0, 8) + '…' : id));
    b.type = 'button';
    b.title = vis('show every record of approval ' + id);
    b.setAttribute('data-approval', id);
    b.addEventListener('click', function (e) { e.stopPropagation(); F.approval = id; F.page = 0; renderTimeline(); });
    b.addEventListener('keydown', function (e) { e.stopPropagation(); });
    return b;
  }
  function approvalFocus() {
    var host = document.getElementById('approval-focus');
    host.textContent = '';
    var a = F.approval === null ? undefined : approvalOf['A' + F.approval];
    if (!a) { host.hidden = true; return; }
    host.hidden = false;
    var back = el('button', 'more', 'show all records');
    back.type = 'button';
    back.addEventListener('click', function () { F.approval = null; F.page = 0; renderTimeline(); });
    var facts = el('div', 'muted', [a.policy ? 'policy ' + a.policy : '', a.session !== undefined ? 'session ' + a.session : 'no session', a.principal ? 'asked for ' + a.principal : '', a.tool || '', a.uses ? plural(a.uses, 'use') + ' of the grant' : ''].filter(Boolean).join(' · '));
    add(host, approvalChain(a, -1), facts, back);
  }
  var open = {};
  /** Rows act on Enter and Space too: the report is usable from the keyboard. */
  function clickable(tr, fn) {
    tr.tabIndex = 0;
    tr.addEventListener('click', fn);
    tr.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fn(); } });
  }
  function renderTimeline() {
    var list = filtered();
    sessionFocus(F.session === -1 || F.approval !== null ? undefined : F.session === -2 ? null : M.facets.sessions[F.session]);
    approvalFocus();
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    if (F.page >= pages) F.page = pages - 1;
    var body = document.getElementById('timeline-body');
    body.textContent = '';
    var frag = document.createDocumentFragment();
    list.slice(F.page * PAGE, F.page * PAGE + PAGE).forEach(function (r) {
      var tr = el('tr', rowClass(r));
      tr.setAttribute('data-row', String(r.id));
      var seq = el('td', 'seq', r.seq === null ? '—' : '#' + r.seq);
      if (r.trust === 'unverified') seq.appendChild(el('span', 'badge b-unverified', 'UNVERIFIED'));
      else if (r.trust === 'unsealed') seq.appendChild(el('span', 'badge b-unsealed', 'unsealed'));
      var v = el('td'); v.appendChild(verdictBadge(r));
      if (r.drift) v.appendChild(el('span', 'badge b-drift', 'DRIFT'));
      var reason = el('td', 'reason');
      if (r.kind === 'call' || r.kind === 'invalidation') { if (r.reason) reason.textContent = vis(r.reason); if (r.kind === 'invalidation' && r.detail) reason.appendChild(el('div', 'muted', r.detail)); }
      else reason.textContent = vis(r.detail || '');
      if (r.kind === 'approval' && r.note !== undefined) add(reason, add(el('div', 'apr-note'), el('span', 'muted', 'note: '), el('span', 'note-text', r.note)));
      var lapsed = r.kind === 'approval' && r.event === 'requested' ? approvalFor(r) : undefined;
      if (lapsed && lapsed.lapsed) reason.appendChild(el('div', 'muted lapsed', 'expired ' + fmtTime(lapsed.expiresAt) + ' UTC with no decision (no record says so: nothing touched it again)'));
      var code = el('td', 'code', r.code || '');
      if (r.approval !== undefined && approvalFor(r)) code.appendChild(approvalChip(r.approval));
      var sess = nameEl('td', 'sess', r.session);
      if (r.sessionFrom) { sess.classList.add('joined'); sess.title = 'not in the record: found through its ' + (r.sessionFrom === 'evaluation' ? 'evaluation' : 'approval request'); }
      add(tr, seq, el('td', 't', fmtTime(r.time)), sess, nameEl('td', 'who', r.principal), nameEl('td', 'tool', r.tool), v, code, reason);
      clickable(tr, function () {
        if (open[r.id]) { open[r.id].remove(); delete open[r.id]; return; }
        open[r.id] = detailRow(r);
        tr.after(open[r.id]);
      });
      frag.appendChild(tr);
    });
    open = {};
    body.appendChild(frag);
    var count = document.getElementById('timeline-count');
    count.textContent = '';
    add(count, el('b', null, fmtN(list.length)), el('span', null, ' of ' + fmtN(rows.length) + ' records' + (list.length > PAGE ? ' · showing ' + fmtN(F.page * PAGE + 1) + '–' + fmtN(Math.min(list.length, F.page * PAGE + PAGE)) : '') +
      (folded ? ' · ' + plural(folded, 'checkpoint') + ' folded' : '') + ' · click a row for every field'));
    document.getElementById('pg-label').textContent = 'page ' + (F.page + 1) + ' of ' + pages;
    document.getElementById('pg-prev').disabled = F.page === 0;
    document.getElementById('pg-next').disabled = F.page >= pages - 1;
  }
  document.getElementById('pg-prev').addEventListener('click', function () { if (F.page > 0) { F.page--; renderTimeline(); } });
  document.getElementById('pg-next').addEventListener('click', function () { F.page++; renderTimeline(); });
  renderTimeline();
  document.body.setAttribute('data-ready', 'true');
`;
