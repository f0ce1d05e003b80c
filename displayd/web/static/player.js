// The web player (DESIGN "Stream", "Poll"). It follows the board's event stream
// (/events?token=…) and falls back to polling /current with ETags when the stream cannot open
// or keeps failing, trying the stream again now and then. Either way it holds slots by the
// board rule of displayd.boardside: the highest revision of each slot; content sent ahead is
// held and shown at its slot's start by this machine's clock; of the slots that have begun,
// have not ended and are not taken back, the one that began last is on screen; content past
// its valid_until is blanked. While displayd is unreachable what is held stays (a small red
// dot says so), and the player picks up again by itself. Pages are drawn in the largest font
// that fits the screen, with textContent only.
"use strict";

(() => {
  const POLL_MIN_S = 1;
  // At most 5 s between polls, whatever max-age says: a retired slogan must leave the screen
  // within 5 s (DESIGN "Slogans"), and a 304 from memory costs displayd next to nothing.
  const POLL_MAX_S = 5;
  const STREAM_ERRORS = 3;            // failed (re)connections in a row before polling instead
  const STREAM_OPEN_MS = 5000;        // poll meanwhile if the stream has not opened by then
  const RECONNECT_MS = 3000;          // the browser's pause before it reconnects a dropped stream
  const STREAM_RETRY_S = 60;          // try the stream again, ±25 % so players do not all come at once
  const STREAM_QUIET_MS = 300_000;    // reopen a stream silent this long (a dead 4G link stays "open")
  const STREAM_SILENT_MS = 2000;      // a new stream that has said nothing by then: ask /current once
  const MIN_PAGE_MS = 2000;
  const BOUNDARY_MS = 100;            // poll this long after a slot ends when nothing is held after it
  const BOUNDARY_GRACE_MS = 3000;     // ...and keep the ended slot on screen while that answer comes
  const MAX_SLEEP_MS = 60_000;
  const SKEW_MS = 2000;               // a clock this far from displayd's is wrong, not just imprecise
  const FETCH_MS = 10_000;            // a request unanswered this long has failed (a silent link hangs)

  const screen = document.getElementById("screen");
  const pageNode = document.getElementById("page");
  const measure = document.getElementById("measure");
  const offline = document.getElementById("offline");
  const debugNode = document.getElementById("debug");
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const debug = params.get("debug") === "1";
  const board = screen.dataset.board;
  const base = `/api/v1/boards/${encodeURIComponent(board)}`;
  const pollUrl = `${base}/current`;
  const streamUrl = `${base}/events?token=${encodeURIComponent(token)}`;

  // --- the board rule -----------------------------------------------------------------------

  // "campaign:index" → {revision, startsAt, endsAt, document}; document is the show, or null
  // once a blank revision took the slot back. Poll answers carry no revision: they hold at -1,
  // so anything the stream sends for the slot wins.
  const held = new Map();
  let polledAt = 0;  // when a poll answer last replaced what is held
  let clockOffset = 0;  // ms to add to Date.now(): 0 unless this machine's clock is plainly wrong
  const now = () => Date.now() + clockOffset;

  function instant(value) {
    const t = typeof value === "string" ? Date.parse(value) : NaN;
    if (Number.isNaN(t)) throw new Error(`not an instant: ${value}`);
    return t;
  }

  function slotKey(slot) {
    if (!slot || !Number.isInteger(slot.campaign_id) || !Number.isInteger(slot.index)) throw new Error("bad slot");
    return `${slot.campaign_id}:${slot.index}`;
  }

  function isShow(body) {
    return body.type === "show" && body.content && Array.isArray(body.content.pages);
  }

  // One stream document; false when it changes nothing (a duplicate or a stale revision).
  function receive(body, t) {
    if (!body.slot) {  // idle now: what has begun ends; slots that have not begun stay held
      let changed = false;
      for (const [key, slot] of held) {
        if (slot.startsAt <= t) { held.delete(key); changed = true; }
      }
      return changed;
    }
    const key = slotKey(body.slot);
    const revision = Number.isInteger(body.revision) ? body.revision : 0;
    const before = held.get(key);
    if (before && before.revision >= revision) return false;
    const show = isShow(body);
    if (!show && body.type !== "blank") return false;
    held.set(key, {
      revision,
      startsAt: instant(body.slot.starts_at),
      endsAt: instant(show ? body.valid_until : body.slot.ends_at),
      document: show ? body : null,
    });
    return true;
  }

  // The slots a poll answer names: what shows now and `next`.
  function fromPoll(body, t) {
    const fresh = new Map();
    if (body.state === "showing" && body.slot && body.content) {
      // displayd says this shows now: so it has begun, even if this clock is a little behind.
      fresh.set(slotKey(body.slot), {revision: -1, startsAt: Math.min(instant(body.slot.starts_at), t),
                                     endsAt: instant(body.valid_until || body.slot.ends_at),
                                     document: {type: "show", ...body}});
    }
    const next = body.next;
    if (next && next.slot && next.content) {
      fresh.set(slotKey(next.slot), {revision: -1, startsAt: instant(next.slot.starts_at),
                                     endsAt: instant(next.slot.ends_at),
                                     document: {type: "show", board_id: body.board_id, slot: next.slot,
                                                content: next.content, content_hash: next.content_hash,
                                                valid_until: next.slot.ends_at}});
    }
    return fresh;
  }

  // A poll answer is the whole truth at that moment: it replaces what is held.
  function takePoll(body, t) {
    const fresh = fromPoll(body, t);
    held.clear();
    for (const [key, slot] of fresh) held.set(key, slot);
    polledAt = t;
  }

  // Polling without `next` (a board without lead_seconds), the next slot is learnt by a poll
  // at the boundary: until its answer comes, the ended slot stays rather than flash a blank.
  // Not while displayd is unreachable: then valid_until is the end.
  function boundaryHold(t) {
    return onScreen && mode === "poll" && failures === 0 && polledAt < onScreen.endsAt
      && onScreen.endsAt <= t && t < onScreen.endsAt + BOUNDARY_GRACE_MS;
  }

  function choose(t) {
    let chosen = null;
    for (const [key, slot] of held) {
      if (slot.endsAt <= t) { held.delete(key); continue; }  // ended (or past valid_until): forgotten
      if (slot.document && slot.startsAt <= t && (!chosen || slot.startsAt > chosen.startsAt)) chosen = slot;
    }
    return chosen;
  }

  // --- drawing ------------------------------------------------------------------------------

  let onScreen = null;  // {identity, pages, startsAt, every, endsAt}
  let pageIndex = -1;
  let renderTimer = null;

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
    const lines = onScreen ? onScreen.pages[pageIndex % onScreen.pages.length] || [] : [];
    pageNode.style.fontSize = `${fit(lines)}px`;
    fill(pageNode, lines);
  }

  // Puts `slot` (or a blank, for null) on screen; returns when the page should turn next.
  function display(slot, t) {
    if (!slot) {
      if (onScreen) {
        onScreen = null;
        pageIndex = -1;
        pageNode.replaceChildren();  // idle: a blank black screen
      }
      screen.dataset.slot = "";
      return Infinity;
    }
    const body = slot.document;
    const identity = `${body.slot.campaign_id}:${body.slot.index}:${body.content_hash}`;
    if (!onScreen || onScreen.identity !== identity) {
      const pages = body.content.pages.length ? body.content.pages : [[body.content.text || ""]];
      const startsAt = instant(body.slot.starts_at);
      // Several pages share the slot: each an equal part of it (at least 2 s), counted from the
      // slot's start, so every screen of the board turns its pages together.
      const every = Math.max(MIN_PAGE_MS, Math.floor((instant(body.slot.ends_at) - startsAt) / pages.length));
      onScreen = {identity, pages, startsAt, every, endsAt: slot.endsAt};
      pageIndex = -1;
    }
    onScreen.endsAt = slot.endsAt;
    screen.dataset.slot = `${body.slot.campaign_id}:${body.slot.index}:${slot.revision}`;
    const elapsed = Math.max(0, t - onScreen.startsAt);
    const index = onScreen.pages.length > 1 ? Math.floor(elapsed / onScreen.every) % onScreen.pages.length : 0;
    if (index !== pageIndex) {
      pageIndex = index;
      drawPage();
    }
    return onScreen.pages.length > 1 ? onScreen.startsAt + (Math.floor(elapsed / onScreen.every) + 1) * onScreen.every
      : Infinity;
  }

  // Shows what the rule says for now, and sleeps until the next instant that can change it.
  function render() {
    clearTimeout(renderTimer);
    const t = now();
    const chosen = choose(t);
    if (!chosen && boundaryHold(t)) {
      renderTimer = setTimeout(render, onScreen.endsAt + BOUNDARY_GRACE_MS - t);
      return;
    }
    let wake = Math.min(t + MAX_SLEEP_MS, display(chosen, t));
    for (const slot of held.values()) {
      if (slot.startsAt > t) wake = Math.min(wake, slot.startsAt);
      wake = Math.min(wake, slot.endsAt);
    }
    renderTimer = setTimeout(render, Math.max(0, wake - t));
  }

  // --- displayd's clock ---------------------------------------------------------------------

  // This machine's clock decides when slots start (DESIGN: the board's own clock). One that is
  // plainly wrong (a box without a battery, no NTP) would hold every slot as not begun or ended,
  // so when the HTTP Date of a same-origin answer puts it more than SKEW_MS off, go by displayd's.
  function learnClock(response, sentAt) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isNaN(date)) return;
    const measured = date + 500 - (sentAt + Date.now()) / 2;  // Date counts whole seconds
    if (Math.abs(measured) < SKEW_MS / 2) clockOffset = 0;
    else if (Math.abs(measured) > SKEW_MS && Math.abs(measured - clockOffset) > 1000) clockOffset = Math.round(measured);
  }

  async function checkClock() {
    try {
      const sentAt = Date.now();
      learnClock(await fetch("/healthz", {cache: "no-store", credentials: "omit",
                                          signal: AbortSignal.timeout(FETCH_MS)}), sentAt);
      render();
    } catch (error) { /* the stream or the poll says whether displayd is reachable */ }
  }

  // --- status -------------------------------------------------------------------------------

  let mode = "";
  let etag = null;
  let failures = 0;
  let lastOk = null;

  function setOffline(isOffline) {
    offline.hidden = !isOffline;
    document.body.classList.toggle("is-offline", isOffline);
  }

  function setMode(value) {
    mode = value;
    screen.dataset.mode = value;
  }

  function showDebug(note) {
    if (!debug) return;
    debugNode.hidden = false;
    const slot = onScreen ? screen.dataset.slot : "—";
    debugNode.textContent = [
      `board ${board}`, `mode ${mode}`, `etag ${etag}`, `slot ${slot}`, `held ${[...held.keys()].join(" ") || "—"}`,
      `clock ${clockOffset} ms`, `last ok ${lastOk ? lastOk.toISOString() : "—"}`, `failures ${failures}`, note,
    ].join("\n");
  }

  // --- polling ------------------------------------------------------------------------------

  let polling = false;
  let pollTimer = null;
  let pollGeneration = 0;  // an answer that arrives after polling stopped is dropped

  function maxAge(response) {
    const match = /max-age=(\d+)/.exec(response.headers.get("Cache-Control") || "");
    return match ? Number(match[1]) : POLL_MAX_S;
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    setMode("poll");
    poll();
  }

  function stopPolling() {
    polling = false;
    pollGeneration += 1;
    clearTimeout(pollTimer);
    etag = null;  // the stream moves on from what was polled: the next fallback asks afresh
  }

  async function poll() {
    const generation = pollGeneration;
    let delay = POLL_MAX_S;
    let note = "";
    try {
      const headers = {Authorization: `Bearer ${token}`, Accept: "application/json"};
      if (etag) headers["If-None-Match"] = etag;
      const sentAt = Date.now();
      // no-store: the ETag dance is ours; the browser's cache must not answer for displayd.
      const response = await fetch(pollUrl, {headers, cache: "no-store", credentials: "omit",
                                             signal: AbortSignal.timeout(FETCH_MS)});
      if (response.status !== 200 && response.status !== 304) throw new Error(`HTTP ${response.status}`);
      const body = response.status === 200 ? await response.json() : null;
      if (generation !== pollGeneration) return;
      learnClock(response, sentAt);
      if (body) {
        takePoll(body, now());
        etag = response.headers.get("ETag");
        render();
      }
      delay = Math.max(POLL_MIN_S, Math.min(maxAge(response), POLL_MAX_S));
      const t = now();
      if (onScreen && onScreen.endsAt > t && ![...held.values()].some((slot) => slot.startsAt > t)) {
        delay = Math.min(delay, (onScreen.endsAt - t + BOUNDARY_MS) / 1000);
      }
      const recovered = failures > 0;
      failures = 0;
      lastOk = new Date();
      setOffline(false);
      note = `HTTP ${response.status}`;
      if (recovered && !source) openStream();  // displayd is back: the stream may be too
    } catch (error) {
      if (generation !== pollGeneration) return;
      // Keep what is held: a board that goes blank whenever the network blinks is worse.
      failures += 1;
      delay = Math.min(POLL_MAX_S, failures);
      setOffline(true);
      render();  // a slot kept over its end for the boundary's answer goes now
      note = String(error.message || error);
    }
    showDebug(note);
    if (polling) pollTimer = setTimeout(poll, delay * 1000);
  }

  // --- the stream ---------------------------------------------------------------------------

  let source = null;
  let streamOpen = false;
  let streamErrors = 0;
  let openTimer = null;
  let quietTimer = null;
  let fillTimer = null;
  let streamEvents = 0;
  let retryTimer = null;

  function openStream() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) return;
    const stream = new EventSource(streamUrl);
    source = stream;
    streamOpen = false;
    streamErrors = 0;
    awaitOpen(stream, STREAM_OPEN_MS);
    stream.addEventListener("open", () => {
      if (source !== stream) return;
      streamOpen = true;
      streamErrors = 0;
      clearTimeout(openTimer);
      stopPolling();
      failures = 0;
      lastOk = new Date();
      setOffline(false);
      setMode("stream");
      keepWatch(stream);
      clearTimeout(fillTimer);
      fillTimer = setTimeout(() => { if (source === stream) fillIn(stream); }, STREAM_SILENT_MS);
      checkClock();
      showDebug("stream open");
    });
    for (const type of ["show", "blank"]) stream.addEventListener(type, (event) => onEvent(stream, event));
    stream.addEventListener("error", () => onStreamError(stream));
  }

  // Polls meanwhile if `stream` has not opened within `ms` (a reconnection that hangs says nothing).
  function awaitOpen(stream, ms) {
    clearTimeout(openTimer);
    openTimer = setTimeout(() => { if (source === stream && !streamOpen) startPolling(); }, ms);
  }

  function closeStream() {
    if (source) source.close();
    source = null;
    streamOpen = false;
    clearTimeout(openTimer);
    clearTimeout(quietTimer);
    clearTimeout(fillTimer);
  }

  // A stream that says nothing on opening leaves the screen blank until the next slot's content:
  // one poll fills in what shows now. It only adds, and not once the stream has spoken since.
  async function fillIn(stream) {
    const seen = streamEvents;
    try {
      const sentAt = Date.now();
      const response = await fetch(pollUrl, {headers: {Authorization: `Bearer ${token}`, Accept: "application/json"},
                                             cache: "no-store", credentials: "omit",
                                             signal: AbortSignal.timeout(FETCH_MS)});
      if (response.status !== 200 || source !== stream) return;
      const body = await response.json();
      if (source !== stream || streamEvents !== seen) return;
      learnClock(response, sentAt);
      for (const [key, slot] of fromPoll(body, now())) if (!held.has(key)) held.set(key, slot);
      render();
      showDebug("filled from /current");
    } catch (error) { /* the stream says whether displayd is reachable */ }
  }

  function keepWatch(stream) {
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => {
      if (source !== stream) return;
      closeStream();  // a fresh connection gets what is valid now
      openStream();
    }, STREAM_QUIET_MS);
  }

  function onEvent(stream, event) {
    if (source !== stream) return;
    let body;
    try {
      body = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!body || typeof body !== "object" || (body.board_id !== undefined && body.board_id !== board)) return;
    streamErrors = 0;
    lastOk = new Date();
    keepWatch(stream);
    clearTimeout(fillTimer);
    streamEvents += 1;
    let changed = false;
    try {
      changed = receive(body, now());
    } catch (error) { /* a document without a usable slot: ignored */ }
    if (changed) render();
    showDebug(`${event.type} ${event.lastEventId}`);
  }

  function onStreamError(stream) {
    if (source !== stream) return;
    streamOpen = false;
    streamErrors += 1;
    // CLOSED: the browser gave up (an HTTP error such as 404 or 429, not an event stream).
    if (stream.readyState === EventSource.CLOSED || streamErrors >= STREAM_ERRORS) {
      closeStream();
      startPolling();  // polling now says whether displayd is reachable
      retryTimer = setTimeout(openStream, STREAM_RETRY_S * (0.75 + Math.random() * 0.5) * 1000);
    } else {
      awaitOpen(stream, RECONNECT_MS + STREAM_OPEN_MS);  // the browser reconnects by itself meanwhile
      if (streamErrors >= 2 && !polling) setOffline(true);  // reconnecting, and failing: unreachable for now
    }
    showDebug(`stream error ${streamErrors}`);
  }

  window.addEventListener("resize", () => { if (onScreen) drawPage(); });
  openStream();
  render();
})();
