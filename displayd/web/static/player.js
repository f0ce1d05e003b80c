// The web player: polls /current with the board's token and its last ETag, shows the pages
// in the largest font that fits the screen, keeps the last content while displayd is
// unreachable (a small dot says so) and picks up again by itself. textContent only.
"use strict";

(() => {
  const MAX_POLL_S = 5;
  const MIN_POLL_S = 1;
  const MIN_PAGE_MS = 2000;
  const screen = document.getElementById("screen");
  const pageNode = document.getElementById("page");
  const measure = document.getElementById("measure");
  const offline = document.getElementById("offline");
  const debugNode = document.getElementById("debug");
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const debug = params.get("debug") === "1";
  const url = `/api/v1/boards/${encodeURIComponent(screen.dataset.board)}/current`;

  let etag = null;
  let shown = null;        // the last document with state "showing", or null when blank
  let pages = [];
  let pageIndex = 0;
  let pageTimer = null;
  let failures = 0;
  let lastOk = null;

  function fill(node, lines) {
    node.replaceChildren(...lines.map((line) => {
      const div = document.createElement("div");
      div.textContent = line;
      return div;
    }));
  }

  // The largest font size (px) at which the lines fit the screen: binary search on a hidden copy.
  function fit(lines) {
    fill(measure, lines);
    const width = window.innerWidth * 0.94;
    const height = window.innerHeight * 0.92;
    let low = 4;
    let high = Math.max(8, Math.ceil(window.innerHeight));
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      measure.style.fontSize = `${mid}px`;
      if (measure.scrollWidth <= width && measure.scrollHeight <= height) low = mid; else high = mid;
    }
    return low;
  }

  function drawPage() {
    const lines = pages.length ? pages[pageIndex % pages.length] : [];
    pageNode.style.fontSize = `${fit(lines)}px`;
    fill(pageNode, lines);
  }

  function show(documentBody) {
    clearInterval(pageTimer);
    pageTimer = null;
    if (documentBody.state !== "showing" || !documentBody.content) {
      shown = null;
      pages = [];
      pageNode.replaceChildren();  // idle: a blank black screen
      return;
    }
    shown = documentBody;
    pages = documentBody.content.pages;
    pageIndex = 0;
    drawPage();
    if (pages.length > 1) {
      // Several pages share the slot: each gets an equal part of it (at least 2 s).
      const slotMs = Date.parse(documentBody.slot.ends_at) - Date.parse(documentBody.slot.starts_at);
      const every = Math.max(MIN_PAGE_MS, Math.floor(slotMs / pages.length));
      pageTimer = setInterval(() => { pageIndex += 1; drawPage(); }, every);
    }
  }

  function maxAge(response) {
    const match = /max-age=(\d+)/.exec(response.headers.get("Cache-Control") || "");
    return match ? Number(match[1]) : MAX_POLL_S;
  }

  function setOffline(isOffline) {
    offline.hidden = !isOffline;
    document.body.classList.toggle("is-offline", isOffline);
  }

  function showDebug(note) {
    if (!debug) return;
    debugNode.hidden = false;
    debugNode.textContent = [
      `board ${screen.dataset.board}`, `etag ${etag}`, `state ${shown ? "showing" : "blank"}`,
      `slot ${shown ? `${shown.slot.campaign_id}/${shown.slot.index}` : "—"}`,
      `last ok ${lastOk ? lastOk.toISOString() : "—"}`, `failures ${failures}`, note,
    ].join("\n");
  }

  async function poll() {
    let delay = MAX_POLL_S;
    let note = "";
    try {
      const headers = {Authorization: `Bearer ${token}`, Accept: "application/json"};
      if (etag) headers["If-None-Match"] = etag;
      // no-store: the ETag dance is ours; the browser's cache must not answer for displayd.
      const response = await fetch(url, {headers, cache: "no-store", credentials: "omit"});
      if (response.status === 200) {
        const body = await response.json();
        etag = response.headers.get("ETag");
        show(body);
      } else if (response.status !== 304) {
        throw new Error(`HTTP ${response.status}`);
      }
      delay = Math.max(MIN_POLL_S, Math.min(maxAge(response), MAX_POLL_S));
      failures = 0;
      lastOk = new Date();
      setOffline(false);
      note = `HTTP ${response.status}`;
    } catch (error) {
      // Keep what is on screen: a board that goes blank whenever the network blinks is worse.
      failures += 1;
      delay = Math.min(MAX_POLL_S, failures);
      setOffline(true);
      note = String(error.message || error);
    }
    showDebug(note);
    setTimeout(poll, delay * 1000);
  }

  window.addEventListener("resize", () => { if (pages.length) drawPage(); });
  poll();
})();
