// The board's only script: live rows over SSE, countdowns, and confirmation of dangerous forms.
(function () {
  "use strict";
  var zh = document.documentElement.lang.indexOf("zh") === 0;
  var held = {};  // rows not replaced while an officer has their action form open

  function mmss(seconds) {
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    var rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - now) / 1000;
      el.dataset.label = el.dataset.label || el.textContent;
      el.textContent = el.dataset.label + " " + (left > 0 ? mmss(left) : (zh ? "即将执行" : "due now"));
      el.classList.toggle("soon", left < 60);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var ago = (now - Date.parse(el.dataset.since)) / 1000;
      el.textContent = zh ? "发布于 " + mmss(ago) + " 前" : "issued " + mmss(ago) + " ago";
    });
  }

  function rowFrom(html) {
    var t = document.createElement("tbody");
    t.innerHTML = html.trim();
    return t.firstElementChild;
  }

  function signature(row) {  // what a person sees, without the ticking countdown
    return row.className + Array.prototype.map.call(row.cells, function (cell) {
      return cell.querySelector("[data-due]") ? "" : cell.textContent;
    }).join("|");
  }

  function applyBoard(tbody, data) {
    Object.keys(data.rows).forEach(function (id) {
      var old = document.getElementById("c-" + id);
      if (old && old.querySelector("details[open]")) { held[id] = data.rows[id]; return; }
      var fresh = rowFrom(data.rows[id]);
      var same = old && signature(old) === signature(fresh);
      if (old) { old.replaceWith(fresh); } else { tbody.appendChild(fresh); }
      if (same) { return; }
      fresh.classList.add("changed");
      setTimeout(function () { fresh.classList.remove("changed"); }, 2500);
    });
    if (data.order) {  // sent only when rows came, went or moved
      var keep = {};
      data.order.forEach(function (id) {
        keep[id] = true;
        var row = document.getElementById("c-" + id);
        if (row) { tbody.appendChild(row); }
      });
      Array.prototype.slice.call(tbody.children).forEach(function (row) {
        if (!keep[row.dataset.id]) { row.remove(); }
      });
    }
    var summary = document.getElementById("summary");
    if (summary && data.summary) { summary.innerHTML = data.summary; }
    tick();
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
      applyBoard(el, JSON.parse(e.data));
      if (e.lastEventId) { el.dataset.held = e.lastEventId; }
    });
    source.addEventListener("overview", function (e) { el.innerHTML = JSON.parse(e.data).cards; tick(); });
  }

  document.addEventListener("toggle", function (e) {
    var row = e.target.closest && e.target.closest("tr[data-id]");
    if (row && !e.target.open && held[row.dataset.id]) {
      var fresh = rowFrom(held[row.dataset.id]);
      delete held[row.dataset.id];
      row.replaceWith(fresh);
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
    document.querySelectorAll("[data-live]").forEach(connect);
    tick();
    setInterval(tick, 1000);
  });
})();
