/* The window evaluator (评价器, /pad). The screen follows the window's service through htmx
   (a fragment polled every 2 s). A press is first written to an IndexedDB queue with its own
   Idempotency-Key, the moment the faces were shown and the moment it was pressed, then sent;
   whatever the network refused stays queued and is sent again when it returns, and the
   server stores a key once, so nothing is lost or doubled. */
(function () {
  "use strict";
  var body = document.body;
  if (!body || !body.classList.contains("pad")) return;

  var DB_NAME = "hcp-pad";
  var STORE = "queue";
  var RATED_KEY = "hcp-pad-rated";
  var THANKS_MS = 4000;
  var badLevels = (body.getAttribute("data-bad-levels") || "").split(",")
    .filter(Boolean).map(Number);
  var screenEl = document.getElementById("screen");
  var reasonsEl = document.getElementById("reasons");
  var thanksEl = document.getElementById("thanks");
  var hintEl = document.getElementById("reasons-hint");
  var offlineEl = document.getElementById("pad-offline");
  var shown = {}; // service id -> when its faces were first shown (ISO, the pad's clock)
  var rated = loadRated(); // service ids rated on this pad
  var pending = null; // the press waiting for its reasons
  var lastHtml = null;
  var flushing = false;
  var thanksTimer = null;

  function nowIso() { return new Date().toISOString(); }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  function loadRated() {
    try {
      var ids = JSON.parse(localStorage.getItem(RATED_KEY) || "[]");
      var out = {};
      ids.forEach(function (id) { out[id] = true; });
      return out;
    } catch (e) {
      return {};
    }
  }

  function saveRated() {
    try {
      localStorage.setItem(RATED_KEY, JSON.stringify(Object.keys(rated).slice(-50)));
    } catch (e) { /* private mode: the server's screen still moves on */ }
  }

  // --- the offline queue (IndexedDB) -------------------------------------------------------
  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "key" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode);
        var req = work(t.objectStore(STORE));
        t.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        t.onerror = function () { db.close(); reject(t.error); };
      });
    });
  }

  function send(item) {
    return fetch("/pad/evaluations", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Idempotency-Key": item.key },
      body: JSON.stringify(item.body)
    }).then(function (r) {
      if (r.status === 401) { window.location.reload(); throw new Error("pad revoked"); }
      if (r.status >= 500 || r.status === 429) throw new Error("retry later");
      if (r.status >= 400 && r.status !== 409) {
        console.warn("评价被拒绝（" + r.status + "），不再重发", item.body);
      }
      // Stored (201, or the first answer replayed), rated already (409) or refused for
      // good: it leaves the queue.
      return withStore("readwrite", function (s) { return s.delete(item.key); });
    });
  }

  function flush() {
    if (flushing || !navigator.onLine) return Promise.resolve();
    flushing = true;
    return withStore("readonly", function (s) { return s.getAll(); })
      .then(function (items) {
        items.sort(function (a, b) { return a.queued_at < b.queued_at ? -1 : 1; });
        return items.reduce(function (chain, item) {
          return chain.then(function () { return send(item); });
        }, Promise.resolve());
      })
      .catch(function () { /* offline or a server error: the next round tries again */ })
      .then(function () { flushing = false; });
  }

  // --- the screens ------------------------------------------------------------------------
  function currentSection() { return screenEl && screenEl.querySelector(".pad-screen"); }

  function onScreen() {
    var section = currentSection();
    if (!section) return;
    var id = section.getAttribute("data-service");
    if (section.getAttribute("data-state") !== "serving" || !id) return;
    if (!shown[id]) shown[id] = nowIso();
    if (rated[id]) {
      section.classList.add("is-rated");
      var note = section.querySelector(".pad-rated");
      if (note) note.hidden = false;
    }
  }

  function show(el) {
    [screenEl, reasonsEl, thanksEl].forEach(function (e) { if (e) e.hidden = e !== el; });
  }

  function focusHeading(el) {
    var h = el.querySelector("h2");
    if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  }

  function askReasons(level) {
    Array.prototype.forEach.call(reasonsEl.querySelectorAll(".pad-reasons"), function (fs) {
      fs.hidden = Number(fs.getAttribute("data-level")) !== level;
    });
    Array.prototype.forEach.call(reasonsEl.querySelectorAll("input[type=checkbox]"), function (c) {
      c.checked = false;
    });
    hintEl.hidden = true;
    show(reasonsEl);
    focusHeading(reasonsEl);
  }

  function give(reasons) {
    var press = pending;
    pending = null;
    var item = {
      key: newKey(),
      queued_at: nowIso(),
      body: {
        service_id: press.service,
        level: press.level,
        reasons: reasons,
        displayed_at: press.displayed,
        evaluated_at: press.pressed
      }
    };
    rated[String(press.service)] = true;
    saveRated();
    show(thanksEl);
    focusHeading(thanksEl);
    clearTimeout(thanksTimer);
    thanksTimer = setTimeout(function () { show(screenEl); onScreen(); }, THANKS_MS);
    return withStore("readwrite", function (s) { return s.put(item); }).then(flush);
  }

  if (screenEl) {
    screenEl.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest(".pad-face") : null;
      if (!button) return;
      var section = button.closest(".pad-screen");
      var id = section && section.getAttribute("data-service");
      if (!id || rated[id]) return;
      pending = {
        service: Number(id),
        level: Number(button.getAttribute("data-level")),
        displayed: shown[id] || nowIso(),
        pressed: nowIso()
      };
      if (badLevels.indexOf(pending.level) >= 0) askReasons(pending.level);
      else give([]);
    });
  }

  var submit = document.getElementById("reasons-submit");
  if (submit) {
    submit.addEventListener("click", function () {
      if (!pending) return;
      var codes = Array.prototype.map.call(
        reasonsEl.querySelectorAll(".pad-reasons:not([hidden]) input:checked"),
        function (c) { return c.value; }
      );
      if (!codes.length) { hintEl.hidden = false; return; }
      give(codes);
    });
  }
  var back = document.getElementById("reasons-back");
  if (back) {
    back.addEventListener("click", function () { pending = null; show(screenEl); });
  }

  // htmx: no request while offline (the last screen stays), no swap of an unchanged
  // fragment (focus and screen readers stay put), a revoked pad reloads into its notice.
  body.addEventListener("htmx:beforeRequest", function (e) {
    if (!navigator.onLine) e.preventDefault();
  });
  body.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    if (xhr && xhr.status === 401) { window.location.reload(); return; }
    if (xhr && xhr.responseText === lastHtml) e.detail.shouldSwap = false;
    else if (xhr) lastHtml = xhr.responseText;
  });
  body.addEventListener("htmx:afterSwap", onScreen);

  function network() {
    if (offlineEl) offlineEl.hidden = navigator.onLine;
    if (navigator.onLine) flush();
  }
  window.addEventListener("online", network);
  window.addEventListener("offline", network);
  setInterval(flush, 5000);
  network();
  onScreen();

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/pad/sw.js", { scope: "/pad" }).catch(function () {});
  }
})();
