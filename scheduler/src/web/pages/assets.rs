//! The dashboard's one style sheet and one script, served from
//! `/assets/` (no inline script: the Content-Security-Policy forbids it).

pub const CSS: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .me{margin-left:auto;font-size:.9em}
header form{display:inline}
main{padding:1em 1.5em}
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}
th,td{border:1px solid #d0d7e1;padding:.3em .6em;text-align:left;font-size:.92em;vertical-align:top}
th{background:#e8edf3}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
progress{width:14em;height:1.1em}
.state-completed,.health-up{color:#2a7a2a}.state-failed,.state-cancelled,.health-lost{color:#a02020}.state-running{color:#1d5fa0}
.err{color:#a02020}
.note{color:#4a5a6a;font-size:.9em}
.provisional{color:#8a5a00;font-style:italic}
svg.chart{background:#fff;border:1px solid #d0d7e1;display:block;margin:.5em 0}
svg.chart .grid{stroke:#e3e8ef}
svg.chart .axis-line{stroke:#33414f}
svg.chart text{font-size:11px;fill:#33414f}
svg.chart .chart-title{font-weight:600;font-size:12px}
svg.chart .axis-label{font-size:11px;font-weight:600}
.mono{font-family:ui-monospace,monospace}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.25em 1em;background:#fff;padding:.8em;border:1px solid #d0d7e1;max-width:70em}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.site{background:#fff;border:1px solid #d0d7e1;padding:.6em 1em;margin:0 0 1.2em}
.tag{display:inline-block;background:#e8edf3;border-radius:3px;padding:0 .4em;margin:0 .2em .2em 0;font-size:.85em}
form.filters{background:#fff;border:1px solid #d0d7e1;padding:.5em .8em;display:flex;flex-wrap:wrap;gap:.8em;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:.85em}
details{margin:0 0 1.2em}
#indicators td:first-child,#indicators td:nth-child(2){white-space:nowrap}
header .badge{background:#c0392b;color:#fff;border-radius:9px;padding:0 .45em;font-size:.8em}
h2 a.case-links{font-size:.7em;font-weight:400;margin-left:.8em}
.tlp{display:inline-block;font-family:ui-monospace,monospace;font-size:.8em;padding:0 .35em;border-radius:3px;background:#000;color:#fff}
.tlp-red{color:#ff2b2b}.tlp-amber,.tlp-amber-strict{color:#ffc000}.tlp-green{color:#33ff00}.tlp-clear{color:#fff}
.astate-new{color:#a02020;font-weight:600}.astate-dismissed{color:#4a5a6a}
td.actions form{display:block;margin:0 0 .3em}
#alerts td:first-child{white-space:nowrap}
svg.graph .node rect{fill:#e8edf3;stroke:#1d3557}
svg.graph .node.indicator rect{fill:#fff;stroke:#8aa0b8}
svg.graph .node.other rect{fill:#fde8d8;stroke:#a0522d}
svg.graph .edge{stroke:#8aa0b8;stroke-width:1.2}
"#;

pub const JS: &str = r#"
(function(){
  // The new-alerts badge, and the alerts table, kept live by the alert
  // events of /alerts/events.
  var badge = document.getElementById('alerts-badge');
  if (!badge || !window.EventSource) return;
  var es = null;
  var box = document.getElementById('alerts-live');
  var loading = false, again = false;
  function typing(){
    var ins = box.querySelectorAll('input.reason');
    for (var i = 0; i < ins.length; i++) if (ins[i].value) return true;
    return false;
  }
  function reload(){
    if (!box) return;
    if (typing()) { setTimeout(reload, 2000); return; }
    if (loading) { again = true; return; }
    loading = true;
    fetch(box.getAttribute('data-fragment'), {credentials: 'same-origin'})
      .then(function(r){ return r.ok ? r.text() : null; })
      .then(function(t){ if (t !== null) box.innerHTML = t; })
      .catch(function(){})
      .then(function(){ loading = false; if (again) { again = false; reload(); } });
  }
  function message(m){
    var d;
    try { d = JSON.parse(m.data); } catch (e) { return; }
    if (typeof d.new === 'number') {
      badge.textContent = String(d.new);
      badge.hidden = d.new === 0;
    }
    if (d.alert) reload();
  }
  // One stream per shown page: closed when the page is left (a page kept
  // in the back-forward cache must not hold a connection), opened again
  // when it comes back.
  function open(){
    if (es) return;
    es = new EventSource(badge.getAttribute('data-events'));
    es.onmessage = message;
  }
  window.addEventListener('pagehide', function(){ if (es) { es.close(); es = null; } });
  window.addEventListener('pageshow', function(e){ if (e.persisted) { open(); reload(); } });
  open();
})();
(function(){
  var el = document.getElementById('live');
  if (!el || !window.EventSource) return;
  var url = el.getAttribute('data-events');
  var chartUrl = el.getAttribute('data-chart');
  var es = new EventSource(url);
  var lastChart = 0;
  function text(id, v){ var e = document.getElementById(id); if (e) e.textContent = v; }
  es.onmessage = function(m){
    var d = JSON.parse(m.data);
    var p = document.getElementById('progress');
    if (p) { p.max = 1000; p.value = Math.round(d.fraction * 1000); }
    text('pct', d.pct);
    text('state', d.state);
    text('rate', d.throughput);
    text('eta', d.eta);
    text('tasks', d.tasks);
    text('counts-note', d.counts_note);
    var tb = document.getElementById('findings');
    if (tb) {
      while (tb.firstChild) tb.removeChild(tb.firstChild);
      d.findings.forEach(function(f){
        var tr = document.createElement('tr');
        var a = document.createElement('td'); a.textContent = f[0];
        var b = document.createElement('td'); b.textContent = f[1]; b.className = 'num';
        tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
      });
    }
    var box = document.getElementById('throughput-box');
    var now = Date.now();
    if (box && chartUrl && now - lastChart > 2000) {
      lastChart = now;
      fetch(chartUrl, {credentials: 'same-origin'}).then(function(r){ return r.ok ? r.text() : null; })
        .then(function(svg){ if (svg) box.innerHTML = svg; });
    }
    if (d.final) { es.close(); setTimeout(function(){ location.reload(); }, 800); }
  };
})();
"#;
