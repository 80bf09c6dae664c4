// The board's only script: live rows over SSE, countdowns and times since, confirmation of dangerous
// forms, and the opt-in alert (a browser notification and a short beep) when someone becomes unreached.
(function () {
  "use strict";
  var zh = document.documentElement.lang.indexOf("zh") === 0;
  var held = {};  // call-outs not replaced while an officer has one of their forms open
  var NOTIFY_KEY = "jiaoying.notify-unreached";

  function mmss(seconds) {
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    var rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function ago(seconds) {  // 刚刚, 6分钟前, 2小时前, 3天前 — as board/views.py ago() says it
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) { return zh ? "刚刚" : "just now"; }
    if (s < 3600) { return zh ? Math.floor(s / 60) + "分钟前" : Math.floor(s / 60) + " min ago"; }
    if (s < 86400) { return zh ? Math.floor(s / 3600) + "小时前" : Math.floor(s / 3600) + " h ago"; }
    return zh ? Math.floor(s / 86400) + "天前" : Math.floor(s / 86400) + " days ago";
  }

  // The board's clock, not the browser's: the page says when it was rendered (the demo's story clock,
  // or a server whose clock differs from this computer's), and the countdowns and times since count
  // from that instant onwards. A live update may move it (data.now in the stream's events).
  var skew = 0;

  function setServerNow(ms) {  // milliseconds since the epoch, as the page and the stream say it
    var at = Number(ms);
    if (ms && !isNaN(at)) { skew = at - Date.now(); }
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - now) / 1000;
      el.dataset.label = el.dataset.label || el.textContent;
      el.textContent = el.dataset.label + " " + (left > 0 ? mmss(left) : (zh ? "即将执行" : "due now"));
      el.classList.toggle("soon", left < 60);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var text = ago((now - Date.parse(el.dataset.since)) / 1000);
      el.textContent = zh ? "发布于 " + text : "issued " + text;
    });
    document.querySelectorAll("time.ago[datetime]").forEach(function (el) {  // 21:32（6分钟前）
      el.dataset.clock = el.dataset.clock || el.textContent;
      var text = ago((now - Date.parse(el.getAttribute("datetime"))) / 1000);
      el.textContent = el.dataset.clock + (zh ? "（" + text + "）" : " (" + text + ")");
    });
  }

  function callout(html) {  // a call-out's <tbody> from the stream's HTML
    var t = document.createElement("table");
    t.innerHTML = html.trim();
    return t.querySelector("tbody");
  }

  function signature(part) {  // what a person sees, without the ticking countdowns and times since
    var text = "";
    part.querySelectorAll("td").forEach(function (cell) {
      text += (cell.querySelector("[data-due]") ? "" : cell.textContent) + "|";
    });
    return part.className + text;
  }

  // -- the opt-in alert when someone becomes unreached ------------------------------------------------

  var audio = null;

  function alertsOn() {
    try { return window.localStorage.getItem(NOTIFY_KEY) === "on"; } catch (e) { return false; }
  }

  function unlockAudio() {  // an AudioContext may only start from a user's click: made (or resumed) there
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    if (!audio) { audio = new Context(); }
    if (audio.state === "suspended") { audio.resume(); }
  }

  function beep() {  // two short tones, about half a second; plays in a background tab once unlocked
    if (!audio) { return; }
    [0, 0.28].forEach(function (start) {
      var osc = audio.createOscillator(), gain = audio.createGain(), at = audio.currentTime + start;
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.24);
    });
  }

  function announce(rows) {  // rows: the <tbody> elements of people who just became unreached
    if (!rows.length) { return; }
    var names = rows.map(function (row) { return row.dataset.name + (row.dataset.area ? "（" + row.dataset.area + "）" : ""); });
    document.dispatchEvent(new CustomEvent("jiaoying:unreached", {detail: {names: names}}));
    if (!alertsOn()) { return; }
    var button = document.getElementById("notify");
    var title = (button ? button.dataset.title : "") + (zh ? "：" : ": ") + names.join(zh ? "、" : ", ");
    if (window.Notification && Notification.permission === "granted") {
      try {
        var note = new Notification(title, {body: button ? button.dataset.body : "", tag: "jiaoying-unreached-" +
          rows.map(function (row) { return row.dataset.id; }).join("-"), requireInteraction: true});
        note.onclick = function () { window.focus(); note.close(); };
      } catch (e) { /* a browser without page notifications: the beep still sounds */ }
    }
    beep();
  }

  function showAlertButton() {
    var button = document.getElementById("notify");
    if (!button) { return; }
    var on = alertsOn() && window.Notification && Notification.permission === "granted";
    button.hidden = false;
    button.classList.toggle("on", !!on);
    button.querySelector("span").textContent = on ? button.dataset.on : button.dataset.off;
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("#notify");
    if (alertsOn()) { unlockAudio(); }  // any click after a reload lets the beep sound again
    if (!button) { return; }
    if (alertsOn()) {
      window.localStorage.removeItem(NOTIFY_KEY);
      showAlertButton();
      return;
    }
    unlockAudio();
    var ask = window.Notification ? Notification.requestPermission() : Promise.resolve("denied");
    Promise.resolve(ask).then(function (answer) {
      if (answer === "granted") { window.localStorage.setItem(NOTIFY_KEY, "on"); }
      showAlertButton();
    });
  });

  // -- live rows --------------------------------------------------------------------------------------

  function applyBoard(table, data) {
    var newlyUnreached = [];
    Object.keys(data.rows).forEach(function (id) {
      var old = document.getElementById("c-" + id);
      var fresh = callout(data.rows[id]);
      if (!fresh) { return; }
      if (fresh.classList.contains("st-unreached") && !(old && old.classList.contains("st-unreached"))) {
        newlyUnreached.push(fresh);
      }
      if (old && old.querySelector("details[open]")) { held[id] = data.rows[id]; return; }
      var same = old && signature(old) === signature(fresh);
      if (old) { old.replaceWith(fresh); } else { table.appendChild(fresh); }
      if (same) { return; }
      fresh.classList.add("changed");
      setTimeout(function () { fresh.classList.remove("changed"); }, 2500);
    });
    if (data.order) {  // sent only when call-outs came, went or moved
      var keep = {};
      data.order.forEach(function (id) {
        keep[id] = true;
        var row = document.getElementById("c-" + id);
        if (row) { table.appendChild(row); }
      });
      table.querySelectorAll("tbody[data-id]").forEach(function (row) {
        if (!keep[row.dataset.id]) { row.remove(); }
      });
    }
    var summary = document.getElementById("summary");
    if (summary && data.summary) { summary.innerHTML = data.summary; }
    tick();
    announce(newlyUnreached);
  }

  function connect(el) {
    // What this page holds (its rows' version): the stream sends only what differs from it. After
    // a dropped stream EventSource says it by itself (Last-Event-ID); a new EventSource by the URL.
    var live = document.getElementById("live");
    var url = el.dataset.live;
    if (el.dataset.held) { url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(el.dataset.held); }
    var source = new EventSource(url);
    source.onopen = function () { live.hidden = false; live.classList.remove("down"); };
    source.onerror = function () {
      live.hidden = false; live.classList.add("down");
      if (source.readyState === EventSource.CLOSED) {  // an HTTP error: EventSource gives up, we don't
        setTimeout(function () { connect(el); }, 2000);
      }
    };
    source.addEventListener("board", function (e) {
      var data = JSON.parse(e.data);
      setServerNow(data.now);
      applyBoard(el, data);
      if (e.lastEventId) { el.dataset.held = e.lastEventId; }
    });
    source.addEventListener("overview", function (e) {
      var data = JSON.parse(e.data);
      setServerNow(data.now);
      el.innerHTML = data.cards;
      tick();
    });
  }

  document.addEventListener("toggle", function (e) {
    var row = e.target.closest && e.target.closest("tbody[data-id]");
    if (row && !e.target.open && !row.querySelector("details[open]") && held[row.dataset.id]) {
      var fresh = callout(held[row.dataset.id]);
      delete held[row.dataset.id];
      row.replaceWith(fresh);
      tick();
    }
  }, true);

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { e.preventDefault(); return; }
    var back = form.querySelector("input[name=back]");
    if (back && location.pathname === back.value) {  // come back to the same filters
      var query = new URLSearchParams(location.search);
      query.delete("done");
      back.value = location.pathname + (query.toString() ? "?" + query : "");
    }
  });

  document.addEventListener("change", function (e) {  // filters apply on change
    if (e.target.form && e.target.form.classList.contains("filters")) { e.target.form.submit(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    setServerNow(document.body.dataset.now);
    document.querySelectorAll("[data-live]").forEach(connect);
    showAlertButton();
    tick();
    setInterval(tick, 1000);
  });
})();
