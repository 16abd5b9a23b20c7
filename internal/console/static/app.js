// calltrack console: the little behaviour the server-rendered pages need.
(function () {
  "use strict";
  function on(sel, ev, fn) { document.querySelectorAll(sel).forEach(function (el) { el.addEventListener(ev, fn); }); }

  document.addEventListener("DOMContentLoaded", function () {
    // Tenant switcher: same page of the other tenant.
    on("[data-tenant-switch] select", "change", function (e) {
      var t = e.target.value; if (!t) return;
      var m = location.pathname.match(/^\/console\/tenants\/[^/]+\/([a-z]+)/);
      location.href = "/console/tenants/" + encodeURIComponent(t) + "/" + (m ? m[1] : "overview");
    });

    // Copy buttons.
    on("button[data-copy]", "click", function (e) {
      var b = e.currentTarget, text = b.getAttribute("data-copy");
      var done = function () { var was = b.textContent; b.textContent = "Copied"; b.classList.add("done"); setTimeout(function () { b.textContent = was; b.classList.remove("done"); }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
      } else { fallback(text); done(); }
    });
    function fallback(text) {
      var ta = document.createElement("textarea"); ta.value = text; document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy"); } catch (err) { /* nothing more to try */ }
      document.body.removeChild(ta);
    }

    // Show the webhook token in the URLs.
    on("[data-reveal]", "click", function (e) {
      document.querySelectorAll("[data-secret-url]").forEach(function (c) { c.textContent = c.getAttribute("data-secret-url"); });
      e.currentTarget.remove();
    });

    // Searchable dropdown: typing filters the options of the select it names.
    on("input[data-filter]", "input", function (e) {
      var q = e.target.value.toLowerCase(), sel = document.getElementById(e.target.getAttribute("data-filter")), first = null;
      Array.prototype.forEach.call(sel.options, function (o) {
        var show = o.text.toLowerCase().indexOf(q) >= 0 || o.value.toLowerCase().indexOf(q) >= 0;
        o.hidden = !show;
        if (show && !o.disabled && !first) first = o;
      });
      if (first && (sel.selectedIndex < 0 || sel.options[sel.selectedIndex].hidden)) first.selected = true;
    });

    // Confirmation for what cannot be undone, and busy buttons.
    document.querySelectorAll("form").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        var btn = e.submitter, msg = (btn && btn.getAttribute("data-confirm")) || f.getAttribute("data-confirm");
        if (msg && !window.confirm(msg)) { e.preventDefault(); return; }
        if (btn && btn.getAttribute("data-busy")) {
          if (btn.name) { var h = document.createElement("input"); h.type = "hidden"; h.name = btn.name; h.value = btn.value; f.appendChild(h); }
          btn.textContent = btn.getAttribute("data-busy"); btn.disabled = true;
        }
      });
    });

    function messages(n) { return n === 1 ? "1 message" : n + " messages"; }

    // Replay progress.
    var job = document.getElementById("replay-job");
    if (job) {
      var bar = job.querySelector(".bar span"), state = job.querySelector(".state");
      var poll = function () {
        fetch(job.getAttribute("data-job-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
          .then(function (res) {
            var j = res.j;
            if (!res.ok) { state.textContent = (j.error && j.error.message) || "The replay's progress could not be read."; job.classList.add("failed"); return; }
            var pct = j.total > 0 ? Math.round(100 * j.sent / j.total) : (j.state === "done" ? 100 : 0);
            bar.style.width = pct + "%";
            job.setAttribute("data-state", j.state);
            if (j.state === "counting") state.textContent = "Counting the messages to replay…";
            else if (j.state === "replaying") state.textContent = "Replaying" + (j.reattribute ? " (re-attributing)" : "") + ": " + j.sent + " of " + messages(j.total) + " sent (" + pct + "%)";
            else if (j.state === "done") {
              state.textContent = "Done: replayed " + messages(j.sent) + (j.reattribute ? ", re-attributed with today's mappings (" + (j.reattributed || 0) + " call " + ((j.reattributed || 0) === 1 ? "log" : "logs") + ")" : "") +
                ". The writers take them now; the Calls page shows them as they are written.";
              job.classList.add("done"); return;
            }
            else if (j.state === "failed") { state.textContent = "The replay stopped after " + j.sent + " of " + messages(j.total) + ": " + j.error; job.classList.add("failed"); return; }
            setTimeout(poll, 500);
          })
          .catch(function () { setTimeout(poll, 2000); });
      };
      poll();
    }
  });
})();
