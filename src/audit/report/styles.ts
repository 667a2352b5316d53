/** The report's stylesheet (inlined; allowed by the page's CSP through its hash). No external fonts. */
export const REPORT_CSS = `
:root {
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --card: #ffffff;
  --permit: #1a7f37; --permit-bg: #dafbe1; --refuse: #cf222e; --refuse-bg: #ffebe9;
  --inval: #8250df; --inval-bg: #fbefff; --would: #9a6700; --would-bg: #fff8c5;
  --reload: #0969da; --reload-bg: #ddf4ff; --unverified-bg: #eaeef2;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
body { margin: 0; }
main { max-width: 1360px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 0; letter-spacing: .2px; }
h2 { font-size: 15px; margin: 0 0 10px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); }
h3 { font-size: 13px; margin: 0 0 8px; }
.mono, code { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }
header.top { display: flex; align-items: baseline; justify-content: space-between; gap: 16px; padding: 12px 0 14px; border-bottom: 1px solid var(--line); margin-bottom: 16px; flex-wrap: wrap; }
header.top .meta { color: var(--muted); font-size: 12.5px; }
.brand { display: flex; align-items: baseline; gap: 10px; }
.brand .tag { font-size: 11px; font-weight: 600; color: var(--muted); border: 1px solid var(--line); border-radius: 4px; padding: 1px 6px; background: var(--card); }

.banner { border-radius: 8px; padding: 16px 20px; margin-bottom: 18px; border: 2px solid; display: grid; grid-template-columns: auto 1fr; gap: 4px 16px; align-items: start; }
.banner .icon { font-size: 34px; line-height: 1; font-weight: 800; grid-row: span 3; width: 44px; height: 44px; border-radius: 50%; display: flex; align-items: center; justify-content: center; color: #fff; }
.banner .state { font-size: 22px; font-weight: 800; letter-spacing: .5px; }
.banner .headline { font-size: 14px; font-weight: 600; word-break: break-word; }
.banner.ok { background: #f0fff4; border-color: var(--permit); }
.banner.ok .icon { background: var(--permit); }
.banner.ok .state { color: var(--permit); }
.banner.warn { background: var(--would-bg); border-color: #d4a72c; }
.banner.warn .icon { background: #bf8700; }
.banner.warn .state { color: #7d4e00; }
.banner.bad { background: var(--refuse); border-color: #82071e; color: #fff; box-shadow: 0 0 0 4px #ffcecb; }
.banner.bad .icon { background: #fff; color: var(--refuse); }
.banner.bad .muted { color: #ffe0dc; }
.banner .logs { grid-column: 2; margin: 8px 0 0; padding: 0; list-style: none; display: grid; gap: 6px; }
.banner .logs li { font-size: 12.5px; }
.banner .logs .k { font-weight: 600; }
.banner .warn { font-weight: 700; }
.banner.bad .breakbox { background: #82071e; border-radius: 6px; padding: 8px 12px; margin-top: 4px; font-family: var(--mono); font-size: 12.5px; word-break: break-word; }

.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(118px, 1fr)); gap: 10px; margin-bottom: 18px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .n { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .l { font-size: 12px; color: var(--muted); }
.card.quiet .n { color: #afb8c1; } .card.approval .n { color: var(--reload); }
.card.refuse .n { color: var(--refuse); } .card.inval .n { color: var(--inval); } .card.would .n { color: var(--would); } .card.permit .n { color: var(--permit); } .card.reload .n { color: var(--reload); }

section.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 18px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; margin-bottom: 18px; }
.charts .panel { margin: 0; }
.charts .wide { grid-column: 1 / -1; }
svg { display: block; max-width: 100%; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
svg .axis { stroke: var(--line); } svg .grid { stroke: #eef1f4; }
svg .tick { fill: var(--muted); }
.f-permit { fill: var(--permit); } .f-refuse { fill: var(--refuse); } .f-inval { fill: var(--inval); } .f-would { fill: #d4a72c; } .f-bar { fill: #57606a; }
.s-reload { stroke: var(--reload); stroke-dasharray: 4 3; stroke-width: 1.5; } .s-failed { stroke: var(--refuse); stroke-dasharray: 2 2; stroke-width: 2; }
.f-drift { fill: var(--inval); }
.legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; color: var(--muted); margin-top: 6px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; background: currentColor; }
.legend .permit { color: var(--permit); } .legend .refuse { color: var(--refuse); } .legend .inval { color: var(--inval); } .legend .would { color: #d4a72c; } .legend .reload { color: var(--reload); } .legend .drift { color: var(--inval); }
.legend span { color: var(--muted); }
.legend span.permit::before { background: var(--permit); } .legend span.refuse::before { background: var(--refuse); } .legend span.inval::before { background: var(--inval); } .legend span.would::before { background: #d4a72c; } .legend span.reload::before { background: var(--reload); height: 2px; vertical-align: 3px; } .legend span.drift::before { background: var(--inval); clip-path: polygon(50% 100%, 0 0, 100% 0); }
.empty { color: var(--muted); font-style: italic; padding: 8px 0; }
.observe-lead { font-size: 13px; margin: 0 0 8px; }
.observe-lead b { color: var(--would); }

table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-size: 11.5px; text-transform: uppercase; letter-spacing: .4px; color: var(--muted); font-weight: 600; background: #f6f8fa; position: sticky; top: 0; z-index: 1; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.sessions tbody tr { cursor: pointer; }
.sessions tbody tr:hover { background: #f6f8fa; }
.sessions tr.attention td:first-child { box-shadow: inset 3px 0 0 var(--refuse); }
/* Names wrap only at the <wbr> places the page puts in (after . - _ / : @, inside runs of 24): never mid-word. */
.cell-id { font-family: var(--mono); font-size: 12px; overflow-wrap: break-word; max-width: 260px; }
.sessions tr.no-session td.cell-id.none { font-style: italic; color: var(--muted); font-family: inherit; }
.sessions td.apr div { font-size: 11.5px; }
.zero { color: #afb8c1; }
.hot { color: var(--refuse); font-weight: 700; } .hot-inval { color: var(--inval); font-weight: 700; } .hot-would { color: var(--would); font-weight: 700; }

.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 10px; }
.filters label { display: flex; flex-direction: column; font-size: 11.5px; color: var(--muted); gap: 2px; }
.filters select, .filters input { font: inherit; font-size: 13px; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; max-width: 240px; }
.filters input[type=search] { width: 260px; }
.filters label.check { justify-content: flex-end; padding-bottom: 5px; }
.filters label.check span { display: flex; align-items: center; gap: 4px; font-size: 13px; color: var(--ink); }
.filters button, .pager button, .more { font: inherit; font-size: 13px; padding: 4px 10px; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa; cursor: pointer; }
.filters button:hover, .pager button:hover, .more:hover { background: #eaeef2; }
.count { font-size: 12.5px; color: var(--muted); margin: 0 0 6px; }
.count b { color: var(--ink); }
.pager { display: flex; gap: 8px; align-items: center; justify-content: flex-end; margin-top: 8px; font-size: 12.5px; color: var(--muted); }
.pager button[disabled] { opacity: .4; cursor: default; }

.timeline td { font-size: 12.5px; }
.timeline td.t { white-space: nowrap; font-family: var(--mono); font-size: 12px; color: var(--muted); }
.timeline td.seq { white-space: nowrap; font-family: var(--mono); font-size: 12px; color: var(--muted); }
.timeline td.who, .timeline td.tool, .timeline td.sess { font-family: var(--mono); font-size: 12px; overflow-wrap: break-word; max-width: 220px; }
.timeline td.sess.joined { font-style: italic; }
.timeline td.reason { word-break: break-word; max-width: 420px; }
.timeline tbody tr.row { cursor: pointer; }
.timeline tbody tr.row:hover td { background-color: rgba(0,0,0,.025); }
.timeline tr.v-refuse td { background: var(--refuse-bg); } .timeline tr.v-refuse td:first-child { box-shadow: inset 4px 0 0 var(--refuse); }
.timeline tr.v-invalidate td { background: var(--inval-bg); } .timeline tr.v-invalidate td:first-child { box-shadow: inset 4px 0 0 var(--inval); }
.timeline tr.v-would td { background: var(--would-bg); } .timeline tr.v-would td:first-child { box-shadow: inset 4px 0 0 #d4a72c; }
.timeline tr.k-reload td { background: var(--reload-bg); } .timeline tr.k-reload td:first-child { box-shadow: inset 4px 0 0 var(--reload); }
.timeline tr.k-reload.failed td:first-child { box-shadow: inset 4px 0 0 var(--refuse); }
.timeline tr.k-checkpoint td, .timeline tr.k-log td { color: var(--muted); }
.timeline tr.e-requested td:first-child { box-shadow: inset 4px 0 0 #d4a72c; }
.timeline tr.e-approval td:first-child { box-shadow: inset 4px 0 0 var(--permit); }
.timeline tr.e-denied td { background: var(--refuse-bg); } .timeline tr.e-denied td:first-child { box-shadow: inset 4px 0 0 var(--refuse); }
.timeline tr.e-expired td:first-child { box-shadow: inset 4px 0 0 #8c959f; }
.apr-note { margin-top: 2px; }
.note-text { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 4px; padding: 0 4px; }
.apr-link { display: block; margin-top: 3px; font: 600 11px var(--mono); color: var(--reload); background: none; border: 0; padding: 0; cursor: pointer; text-decoration: underline dotted; white-space: nowrap; }
.apr-link:hover { text-decoration: underline; }
.chain { margin: 6px 0 2px; }
.chain-head { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; margin-bottom: 4px; }
.chain-head .mono { overflow-wrap: anywhere; }
.chain ol { margin: 0; padding-left: 22px; font-size: 12.5px; }
.chain li { margin: 1px 0; }
.chain li.here { font-weight: 600; }
.focus .chain { margin-top: 0; }
.focus .more { margin-top: 6px; }
.timeline tr.untrusted td { background-image: repeating-linear-gradient(135deg, transparent 0 8px, rgba(207,34,46,.07) 8px 16px); }
.timeline tr.detail td { background: #fbfcfd; border-bottom: 2px solid var(--line); }
.badge { display: inline-block; font-size: 11px; font-weight: 700; letter-spacing: .3px; padding: 1px 6px; border-radius: 10px; border: 1px solid; white-space: nowrap; }
.b-permit { color: var(--permit); border-color: #4ac26b; background: #fff; }
.b-refuse { color: #fff; background: var(--refuse); border-color: var(--refuse); }
.b-invalidate { color: #fff; background: var(--inval); border-color: var(--inval); }
.b-would { color: #4d2d00; background: #ffd33d; border-color: #d4a72c; }
.b-reload { color: #fff; background: var(--reload); border-color: var(--reload); }
.b-failed { color: #fff; background: var(--refuse); border-color: var(--refuse); }
.b-event { color: var(--muted); background: #fff; border-color: var(--line); }
.b-apr-requested, .b-st-pending { color: #4d2d00; background: #fff8c5; border-color: #d4a72c; }
.b-apr-granted, .b-apr-used, .b-st-granted, .b-st-used { color: var(--permit); background: #fff; border-color: #4ac26b; }
.b-apr-denied, .b-st-denied { color: #fff; background: var(--refuse); border-color: var(--refuse); }
.b-apr-expired, .b-apr-returned, .b-apr-other, .b-st-expired { color: var(--muted); background: #fff; border-color: #8c959f; }
.b-drift { color: var(--inval); background: #fff; border-color: var(--inval); margin-left: 4px; }
.b-unverified { color: #fff; background: #57606a; border-color: #57606a; margin-left: 4px; }
.b-unsealed { color: var(--muted); background: #fff; border-color: var(--line); font-weight: 500; margin-left: 4px; }
.code { font-family: var(--mono); font-size: 11.5px; font-weight: 600; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0; font-size: 12px; }
dl.kv dt { color: var(--muted); font-family: var(--mono); }
dl.kv dd { margin: 0; font-family: var(--mono); white-space: pre-wrap; overflow-wrap: anywhere; }
.lane { display: block; }
.focus { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin-bottom: 10px; background: #fbfcfd; }
.focus[hidden] { display: none; }
.focus-head { margin-bottom: 4px; }
.focus-id { font-family: var(--mono); font-weight: 700; overflow-wrap: anywhere; }
.focus-facts { display: flex; gap: 14px; font-size: 12.5px; margin-bottom: 6px; }
.lane .dot-permit { fill: #4ac26b; } .lane .dot-refuse { fill: var(--refuse); } .lane .dot-invalidate { fill: var(--inval); } .lane .dot-would { fill: #d4a72c; }
tr[tabindex]:focus-visible { outline: 2px solid var(--reload); outline-offset: -2px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media print { .filters, .pager, .more { display: none; } .banner.warn { background: var(--would-bg); border-color: #d4a72c; }
.banner.warn .icon { background: #bf8700; }
.banner.warn .state { color: #7d4e00; }
.banner.bad { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
`;
