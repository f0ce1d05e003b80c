// Shared by the dashboard pages: reading the API with the session cookie, formatting times,
// building elements. Data only ever reaches the page through textContent.
"use strict";

window.ui = (() => {
  const ZONE = "Asia/Ho_Chi_Minh";
  const formats = new Map();

  function formatter(zone) {
    if (!formats.has(zone)) {
      let format;
      try {
        format = new Intl.DateTimeFormat("vi-VN", {
          timeZone: zone, day: "2-digit", month: "2-digit", year: "numeric",
          hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
        });
      } catch (_) {
        format = formatter(ZONE);
      }
      formats.set(zone, format);
    }
    return formats.get(zone);
  }

  // "07/05/2024 14:35:20" on the given zone's wall clock; "—" for nothing.
  function time(iso, zone) {
    if (!iso) return "—";
    const parts = {};
    for (const p of formatter(zone || ZONE).formatToParts(new Date(iso))) parts[p.type] = p.value;
    return `${parts.day}/${parts.month}/${parts.year} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  function clock(iso, zone) {
    return iso ? time(iso, zone).slice(11) : "—";
  }

  class SignedOut extends Error {}

  // GET only: the session cookie opens nothing else, and the key never reaches this page.
  async function api(path) {
    const response = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (response.status === 401) {
      location.assign("/ui/login");
      throw new SignedOut("signed out");
    }
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  const PUSH_STATUS = {
    delivered: "đã giao", failed: "thất bại", pending: "đang chờ", skipped: "bỏ qua",
    missed: "bị lỡ", not_pushed: "bảng tự lấy",
  };

  return {ZONE, time, clock, api, el, SignedOut, PUSH_STATUS};
})();
