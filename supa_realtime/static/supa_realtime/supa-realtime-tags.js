/*
 * supa-realtime-tags.js — the page side of {% realtime_client %}, {% realtime_presence %}
 * and {% realtime_events %}. Needs supa-realtime.js first; no build step, no dependency.
 *
 * It reads the JSON element #supa-realtime-config ({endpoint, token, vsn}), opens one
 * client, and when the document is loaded joins one channel per topic used by:
 *
 * - <ul data-realtime-presence="topic" [data-realtime-key="key"]>: re-rendered on every
 *   presence sync with the same markup the server rendered (text only, never HTML);
 * - elements with data-realtime-events="topic" data-realtime-names="A B | *"
 *   [data-realtime-table="schema.table"]: each matching broadcast is dispatched on the
 *   element as a bubbling CustomEvent "realtime:broadcast" ({topic, event, payload}), each
 *   matching table change as "realtime:postgres_changes" ({topic, event, change}).
 *
 * Page scripts that run before the document is loaded may call
 * SupaRealtimeTags.channel(topic) to add their own listeners; after the join,
 * channel.track(meta) / channel.send(...) work as documented for the client.
 * Status changes are dispatched on document as "realtime:status" ({topic, status}).
 */
(function () {
  "use strict";
  const root = globalThis.SupaRealtime;
  if (!root || !root.RealtimeClient) {
    throw new Error("supa-realtime-tags.js needs supa-realtime.js loaded first");
  }
  const configElement = document.getElementById("supa-realtime-config");
  const config = configElement ? JSON.parse(configElement.textContent) : {};
  const endpoint = config.endpoint
    || `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/realtime/v1`;
  const client = new root.RealtimeClient(endpoint, {apikey: config.token, vsn: config.vsn});
  const channels = new Map();
  let started = false;

  function channel(topic, options) {
    let entry = channels.get(topic);
    if (!entry) {
      let key = options && options.presenceKey;
      if (!key) {
        const list = document.querySelector(
          `[data-realtime-presence="${CSS.escape(topic)}"][data-realtime-key]`);
        key = list ? list.dataset.realtimeKey : null;
      }
      const ch = client.channel(topic, key ? {presence: {key}} : {});
      entry = {channel: ch};
      channels.set(topic, entry);
      if (started) subscribe(topic, entry);
    }
    return entry.channel;
  }

  function subscribe(topic, entry) {
    entry.channel.subscribe((status, error) => {
      document.dispatchEvent(new CustomEvent("realtime:status",
        {detail: {topic, status, error: error ? error.message : null}}));
    }).catch(() => {});
  }

  function renderPresence(list, state) {
    const items = Object.keys(state).sort().map((key) => {
      const metas = state[key];
      const latest = metas[metas.length - 1] || {};
      const li = document.createElement("li");
      li.className = "realtime-presence-member";
      li.dataset.key = key;
      li.dataset.count = String(metas.length);
      for (const name of Object.keys(latest).sort()) {
        if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) continue;
        if (name === "phx_ref" || name === "phx_ref_prev" || name === "presence_ref") continue;
        const value = latest[name];
        if (["string", "number", "boolean"].includes(typeof value)) {
          li.setAttribute(`data-meta-${name.replace(/_/g, "-")}`, String(value));
        }
      }
      li.textContent = typeof latest.name === "string" && latest.name ? latest.name : key;
      return li;
    });
    list.replaceChildren(...items);
    list.dispatchEvent(new CustomEvent("realtime:presence", {bubbles: true, detail: {state}}));
  }

  function matches(names, event) {
    return names.includes("*") || names.includes(String(event).toUpperCase());
  }

  function bindEvents(element) {
    const topic = element.dataset.realtimeEvents;
    const names = (element.dataset.realtimeNames || "*").toUpperCase().split(/\s+/);
    const ch = channel(topic);
    ch.on("broadcast", {event: "*"}, (message) => {
      if (!matches(names, message.event)) return;
      element.dispatchEvent(new CustomEvent("realtime:broadcast", {bubbles: true,
        detail: {topic, event: message.event, payload: message.payload}}));
    });
    const table = element.dataset.realtimeTable;
    if (table) {
      const [schema, name] = table.includes(".") ? table.split(".", 2) : ["public", table];
      const events = names.includes("*") ? ["*"] : names;
      for (const event of events) {
        ch.on("postgres_changes", {event, schema, table: name}, (change) => {
          element.dispatchEvent(new CustomEvent("realtime:postgres_changes", {bubbles: true,
            detail: {topic, event: change.eventType, change}}));
        });
      }
    }
  }

  function start() {
    for (const list of document.querySelectorAll("[data-realtime-presence]")) {
      const topic = list.dataset.realtimePresence;
      const ch = channel(topic, {presenceKey: list.dataset.realtimeKey});
      ch.on("presence", {event: "sync"}, () => renderPresence(list, ch.presenceState()));
    }
    for (const element of document.querySelectorAll("[data-realtime-events]")) {
      bindEvents(element);
    }
    started = true;
    for (const [topic, entry] of channels) subscribe(topic, entry);
  }

  globalThis.SupaRealtimeTags = Object.freeze({client, channel});
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, {once: true});
  } else {
    start();
  }
})();
