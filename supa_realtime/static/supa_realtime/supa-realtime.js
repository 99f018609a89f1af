/**
 * supa-realtime.js — a dependency-free browser client for the Supabase Realtime protocol.
 *
 * One static file, no build step. Load it with a plain script tag (it defines
 * `window.SupaRealtime`) or import it for its side effect from an ES module
 * (`await import(url)`; then read `globalThis.SupaRealtime`).
 *
 *     const client = new SupaRealtime.RealtimeClient('wss://host/realtime/v1', {apikey: KEY})
 *     const room = client.channel('room:lobby', {presence: {key: 'alice'}})
 *     room.on('broadcast', {event: 'msg'}, (message) => console.log(message.payload))
 *     room.on('presence', {event: 'sync'}, () => console.log(room.presenceState()))
 *     await room.subscribe((status, error) => console.log(status, error))
 *     await room.track({name: 'Alice'})
 *     await room.send({type: 'broadcast', event: 'msg', payload: {text: 'hi'}})
 *
 * What it does on the wire (the protocol reference is the Supabase Realtime server):
 * - connects to `<endpoint>/websocket?apikey=…&vsn=2.0.0` (vsn 1.0.0 also supported);
 * - sends heartbeats on a fixed schedule; a heartbeat still unanswered when the next one falls
 *   due closes the socket with 1000 "heartbeat timeout" and reconnects;
 * - reconnects after any close it did not ask for, with a jittered backoff, forever;
 * - rejoins every channel after a reconnect with the current token (see `setAuth`);
 * - retries refused or timed-out joins on a schedule;
 * - buffers pushes made while a channel is not joined (bounded: the oldest is dropped and
 *   counted in `channel.droppedPushes`);
 * - sends broadcasts as binary frames (kind 3) under vsn 2.0.0 and JSON under 1.0.0, and
 *   decodes binary broadcasts (kind 4);
 * - keeps presence with the Phoenix sync algorithm;
 * - routes database changes to callbacks by the ids the server assigns in the join reply;
 * - drops frames that belong to an earlier join of a channel.
 */
(function (root, factory) {
  'use strict';
  const api = factory();
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  if (root) root.SupaRealtime = api;
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Constants: every wire string and default in one place
  // ---------------------------------------------------------------------------------------

  const VSN_1 = '1.0.0';
  const VSN_2 = '2.0.0';
  const TOPIC_PREFIX = 'realtime:';
  const PHOENIX_TOPIC = 'phoenix';
  const WEBSOCKET_PATH = '/websocket';

  const EVENTS = Object.freeze({
    join: 'phx_join',
    leave: 'phx_leave',
    reply: 'phx_reply',
    close: 'phx_close',
    error: 'phx_error',
    heartbeat: 'heartbeat',
    accessToken: 'access_token',
    broadcast: 'broadcast',
    presence: 'presence',
    presenceState: 'presence_state',
    presenceDiff: 'presence_diff',
    postgresChanges: 'postgres_changes',
    system: 'system',
  });

  const WILDCARD = '*';
  const DEFAULT_SCHEMA = 'public';
  const CHANGE_TYPES = Object.freeze({insert: 'INSERT', update: 'UPDATE', delete: 'DELETE'});

  const PUSH_TYPES = Object.freeze({broadcast: 'broadcast', presence: 'presence'});
  const PRESENCE_EVENTS = Object.freeze({track: 'track', untrack: 'untrack', sync: 'sync',
    join: 'join', leave: 'leave'});
  const REPLY_STATUS = Object.freeze({ok: 'ok', error: 'error', timeout: 'timed out',
    dropped: 'dropped'});

  /** Statuses passed to the `subscribe()` callback. */
  const SUBSCRIBE_STATES = Object.freeze({
    subscribed: 'SUBSCRIBED',
    timedOut: 'TIMED_OUT',
    closed: 'CLOSED',
    channelError: 'CHANNEL_ERROR',
  });

  /** Channel lifecycle states. */
  const CHANNEL_STATES = Object.freeze({
    closed: 'closed',
    joining: 'joining',
    joined: 'joined',
    leaving: 'leaving',
    errored: 'errored',
  });

  /** Socket states, as `client.connectionState()` reports them. */
  const SOCKET_STATES = Object.freeze({connecting: 'connecting', open: 'open',
    closing: 'closing', closed: 'closed'});

  /** Statuses passed to `client.on('heartbeat', cb)`. */
  const HEARTBEAT_STATUS = Object.freeze({sent: 'sent', ok: 'ok', error: 'error',
    timeout: 'timeout'});

  const CLOSE_NORMAL = 1000;
  const HEARTBEAT_TIMEOUT_REASON = 'heartbeat timeout';
  const LEAVE_REASON = 'client disconnect';

  /** Binary frame kinds of vsn 2.0.0. */
  const BINARY_KIND = Object.freeze({push: 0, reply: 1, broadcast: 2, userBroadcastPush: 3,
    userBroadcast: 4});
  const PAYLOAD_ENCODING = Object.freeze({binary: 0, json: 1});
  const MAX_FIELD_BYTES = 255;

  const DEFAULTS = Object.freeze({
    vsn: VSN_2,
    heartbeatIntervalMs: 25000,
    timeoutMs: 10000,
    reconnectScheduleMs: [1000, 2000, 5000, 10000],
    rejoinScheduleMs: [1000, 2000, 5000, 10000],
    pushBufferSize: 100,
  });

  const BINDINGS_MISMATCH = 'mismatch between server and client bindings for postgres changes';

  // ---------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------

  const utf8Encoder = new TextEncoder();
  const utf8Decoder = new TextDecoder();

  function isBinary(value) {
    return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
  }

  function toBytes(value) {
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  function lower(value) {
    return typeof value === 'string' ? value.toLowerCase() : value;
  }

  function sameValue(a, b) {
    return (a === undefined || a === null) ? (b === undefined || b === null) : a === b;
  }

  /**
   * A backoff delay: the try count picks an entry of `schedule` (the last one repeats),
   * then it is jittered down by up to `jitter` (a fraction), so clients spread out.
   * @param {number[]} schedule delays in ms
   * @param {number} [jitter=0.25]
   * @returns {(tries: number) => number}
   */
  function backoff(schedule, jitter = 0.25) {
    return (tries) => {
      const base = schedule[Math.min(Math.max(tries, 1), schedule.length) - 1];
      return Math.round(base * (1 - jitter * Math.random()));
    };
  }

  /** A timer that calls `callback` after `delayFor(tries)`; `reset()` clears the count. */
  class RetryTimer {
    constructor(callback, delayFor) {
      this.callback = callback;
      this.delayFor = delayFor;
      this.tries = 0;
      this.handle = null;
    }

    reset() {
      this.tries = 0;
      this.cancel();
    }

    cancel() {
      clearTimeout(this.handle);
      this.handle = null;
    }

    schedule() {
      this.cancel();
      this.tries += 1;
      this.handle = setTimeout(() => {
        this.handle = null;
        this.callback();
      }, this.delayFor(this.tries));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Serializers: a message is {joinRef, ref, topic, event, payload}
  // ---------------------------------------------------------------------------------------

  /** vsn 1.0.0: one JSON object per text frame. */
  const V1Serializer = {
    encode(msg) {
      return JSON.stringify({topic: msg.topic, event: msg.event, payload: msg.payload,
        ref: msg.ref, join_ref: msg.joinRef});
    },
    decode(raw) {
      if (typeof raw !== 'string') return null;
      const obj = JSON.parse(raw);
      return {joinRef: obj.join_ref ?? null, ref: obj.ref ?? null, topic: obj.topic,
        event: obj.event, payload: obj.payload};
    },
  };

  /** vsn 2.0.0: JSON arrays in text frames; user broadcasts as binary frames. */
  const V2Serializer = {
    encode(msg) {
      const p = msg.payload;
      if (msg.event === EVENTS.broadcast && p && typeof p.event === 'string') {
        return encodeUserBroadcastPush(msg);
      }
      return JSON.stringify([msg.joinRef, msg.ref, msg.topic, msg.event, msg.payload]);
    },
    decode(raw) {
      if (typeof raw === 'string') {
        const [joinRef, ref, topic, event, payload] = JSON.parse(raw);
        return {joinRef: joinRef ?? null, ref: ref ?? null, topic, event, payload};
      }
      return decodeBinary(raw);
    },
  };

  function fieldBytes(name, value) {
    const bytes = utf8Encoder.encode(value == null ? '' : String(value));
    if (bytes.length > MAX_FIELD_BYTES) {
      throw new RangeError(`${name} is ${bytes.length} bytes; at most ${MAX_FIELD_BYTES} fit`);
    }
    return bytes;
  }

  /** Kind 3: kind, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding, fields. */
  function encodeUserBroadcastPush(msg) {
    const joinRef = fieldBytes('join_ref', msg.joinRef);
    const ref = fieldBytes('ref', msg.ref);
    const topic = fieldBytes('topic', msg.topic);
    const event = fieldBytes('event', msg.payload.event);
    const meta = new Uint8Array(0); // sender metadata is dropped by the server
    const raw = msg.payload.payload;
    const binary = isBinary(raw);
    const body = binary ? toBytes(raw) : utf8Encoder.encode(JSON.stringify(raw ?? null));
    const header = [BINARY_KIND.userBroadcastPush, joinRef.length, ref.length, topic.length,
      event.length, meta.length, binary ? PAYLOAD_ENCODING.binary : PAYLOAD_ENCODING.json];
    const parts = [joinRef, ref, topic, event, meta, body];
    const out = new Uint8Array(header.length + parts.reduce((n, b) => n + b.length, 0));
    out.set(header, 0);
    let offset = header.length;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out.buffer;
  }

  /** Kind 4 (the only binary frame Realtime sends): topic, user event, metadata, payload. */
  function decodeBinary(buffer) {
    const bytes = new Uint8Array(buffer);
    if (bytes[0] !== BINARY_KIND.userBroadcast || bytes.length < 5) return null;
    const [, topicLen, eventLen, metaLen, encoding] = bytes;
    let offset = 5;
    const take = (n) => {
      const part = bytes.subarray(offset, offset + n);
      offset += n;
      return part;
    };
    const topic = utf8Decoder.decode(take(topicLen));
    const event = utf8Decoder.decode(take(eventLen));
    const meta = metaLen > 0 ? JSON.parse(utf8Decoder.decode(take(metaLen))) : null;
    const body = bytes.slice(offset);
    const payload = encoding === PAYLOAD_ENCODING.json
      ? JSON.parse(utf8Decoder.decode(body)) : body.buffer;
    const inner = {type: PUSH_TYPES.broadcast, event, payload};
    if (meta) inner.meta = meta;
    return {joinRef: null, ref: null, topic, event: EVENTS.broadcast, payload: inner};
  }

  // ---------------------------------------------------------------------------------------
  // Presence: the Phoenix sync algorithm as pure functions over {key: {metas: [...]}}
  // ---------------------------------------------------------------------------------------

  function cloneState(state) {
    return JSON.parse(JSON.stringify(state));
  }

  const Presence = {
    /**
     * Reconcile `state` with a full `newState`; keys and metas that vanished are leaves.
     * @returns {object} the new state
     */
    syncState(state, newState, onJoin, onLeave) {
      const current = cloneState(state);
      const joins = {};
      const leaves = {};
      for (const key of Object.keys(current)) {
        if (!(key in newState)) leaves[key] = current[key];
      }
      for (const [key, entry] of Object.entries(newState)) {
        const existing = current[key];
        if (existing) {
          const newRefs = new Set(entry.metas.map((m) => m.phx_ref));
          const curRefs = new Set(existing.metas.map((m) => m.phx_ref));
          const joined = entry.metas.filter((m) => !curRefs.has(m.phx_ref));
          const left = existing.metas.filter((m) => !newRefs.has(m.phx_ref));
          if (joined.length > 0) joins[key] = {metas: joined};
          if (left.length > 0) leaves[key] = {metas: left};
        } else {
          joins[key] = entry;
        }
      }
      return Presence.syncDiff(current, {joins, leaves}, onJoin, onLeave);
    },

    /**
     * Apply a `{joins, leaves}` diff. Joins first, so an update keeps only the new meta;
     * leaves of unknown keys are skipped.
     * @returns {object} the new state
     */
    syncDiff(state, diff, onJoin, onLeave) {
      const next = cloneState(state);
      for (const [key, entry] of Object.entries(diff.joins || {})) {
        const current = next[key];
        const joined = cloneState(entry);
        if (current) {
          const joinedRefs = new Set(joined.metas.map((m) => m.phx_ref));
          const kept = current.metas.filter((m) => !joinedRefs.has(m.phx_ref));
          joined.metas.unshift(...kept);
        }
        next[key] = joined;
        if (onJoin) onJoin(key, current, entry);
      }
      for (const [key, entry] of Object.entries(diff.leaves || {})) {
        const current = next[key];
        if (!current) continue;
        const leftRefs = new Set(entry.metas.map((m) => m.phx_ref));
        current.metas = current.metas.filter((m) => !leftRefs.has(m.phx_ref));
        if (onLeave) onLeave(key, current, entry);
        if (current.metas.length === 0) delete next[key];
      }
      return next;
    },

    /** `{key: [meta, …]}` with `phx_ref` renamed `presence_ref` (as supabase-js shows it). */
    list(state) {
      const out = {};
      for (const [key, entry] of Object.entries(state)) out[key] = Presence.metas(entry);
      return out;
    },

    metas(entry) {
      if (!entry) return [];
      return entry.metas.map(({phx_ref, phx_ref_prev, ...rest}) =>
        ({...rest, presence_ref: phx_ref}));
    },
  };

  // ---------------------------------------------------------------------------------------
  // Push: one outgoing message that may expect a reply
  // ---------------------------------------------------------------------------------------

  class Push {
    constructor(event, payload, {expectReply, timeoutMs}) {
      this.event = event;
      this.payload = payload;
      this.expectReply = expectReply;
      this.timeoutMs = timeoutMs;
      this.ref = null;
      this.timer = null;
      this.settled = false;
      this.promise = new Promise((resolve) => { this._resolve = resolve; });
      this.reply = null;
    }

    /** Start the reply timeout (from the moment the push is made, buffered or not). */
    startTimeout(onTimeout) {
      if (!this.expectReply) return;
      this.timer = setTimeout(() => onTimeout(this), this.timeoutMs);
    }

    settle(status, response) {
      if (this.settled) return;
      this.settled = true;
      clearTimeout(this.timer);
      this.reply = {status, response};
      this._resolve(status);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Channel
  // ---------------------------------------------------------------------------------------

  /**
   * One topic on a {@link RealtimeClient}; create it with `client.channel(name, config)`.
   *
   * Events for `on(type, filter, callback)`:
   * - `'broadcast'`, `{event: 'name' | '*'}`: `callback({type, event, payload, meta?})`;
   *   the event match is case-insensitive. Binary payloads arrive as an `ArrayBuffer`.
   * - `'presence'`, `{event: 'sync' | 'join' | 'leave'}`: `sync` gets `{event}`; `join`
   *   gets `{event, key, currentPresences, newPresences}`, `leave`
   *   `{event, key, currentPresences, leftPresences}`.
   * - `'postgres_changes'`, `{event: '*' | 'INSERT' | 'UPDATE' | 'DELETE', schema, table,
   *   filter?}`: `callback({schema, table, commit_timestamp, eventType, new, old, errors,
   *   columns})`.
   * - `'system'`, `{}`: `callback(payload)` with `{extension, status, message, channel}`.
   * - any other event name: `callback(payload)` for server pushes of that event.
   */
  class Channel {
    constructor(client, topic, config) {
      const cfg = config || {};
      this.client = client;
      this.topic = topic;
      this.config = {
        broadcast: {ack: false, self: false, ...(cfg.broadcast || {})},
        presence: {key: '', enabled: false, ...(cfg.presence || {})},
        private: Boolean(cfg.private),
      };
      this.state = CHANNEL_STATES.closed;
      this.joinRef = null;
      /** Pushes dropped from the full buffer while the channel was not joined. */
      this.droppedPushes = 0;
      this._wantJoined = false;
      this._bindings = [];
      this._pgFilters = [];
      this._pending = new Map();
      this._buffer = [];
      this._trackedMeta = null;
      this._joinPush = null;
      this._statusCallbacks = [];
      this._subscribeWaiters = [];
      this._presence = {state: {}, pendingDiffs: [], joinRef: null};
      this._rejoinTimer = new RetryTimer(() => this._rejoinNow(), client._rejoinAfterMs);
    }

    /**
     * Listen for events of `type` matching `filter`. Call before `subscribe()` for
     * `postgres_changes` (the bindings are part of the join).
     * @param {string} type 'broadcast' | 'presence' | 'postgres_changes' | 'system' | other
     * @param {object} filter see the class description
     * @param {Function} callback
     * @returns {Channel} this, for chaining
     */
    on(type, filter, callback) {
      const binding = {type, filter: filter || {}, callback, id: null, pgIndex: -1};
      if (type === EVENTS.postgresChanges) {
        const f = binding.filter;
        const wire = {event: f.event || WILDCARD, schema: f.schema || DEFAULT_SCHEMA};
        if (f.table !== undefined) wire.table = f.table;
        if (f.filter) wire.filter = f.filter;
        let index = this._pgFilters.findIndex((w) => sameValue(w.event, wire.event)
          && sameValue(w.schema, wire.schema) && sameValue(w.table, wire.table)
          && sameValue(w.filter, wire.filter));
        if (index < 0) index = this._pgFilters.push(wire) - 1;
        binding.pgIndex = index;
      }
      this._bindings.push(binding);
      return this;
    }

    /**
     * Join the topic (connecting the client if needed). Refused and timed-out joins are
     * retried on the rejoin schedule, and the channel rejoins after every reconnect.
     * @param {(status: string, error?: Error) => void} [callback] called with
     *   'SUBSCRIBED' | 'CHANNEL_ERROR' | 'TIMED_OUT' | 'CLOSED' on every change
     * @returns {Promise<string>} resolves 'SUBSCRIBED' once joined (after any retries);
     *   rejects when the channel is closed before that
     */
    subscribe(callback) {
      if (callback) this._statusCallbacks.push(callback);
      const promise = new Promise((resolve, reject) => {
        if (this.state === CHANNEL_STATES.joined) resolve(SUBSCRIBE_STATES.subscribed);
        else this._subscribeWaiters.push({resolve, reject});
      });
      if (!this._wantJoined) {
        this._wantJoined = true;
        this.client._ensureChannel(this);
        if (this.client.isConnected()) this._join();
        else {
          this.state = CHANNEL_STATES.joining;
          this.client.connect();
        }
      }
      return promise;
    }

    /**
     * Leave the topic. Resolves 'ok' on the server's reply, or at once when not connected.
     * @returns {Promise<string>}
     */
    unsubscribe() {
      this._wantJoined = false;
      this._rejoinTimer.reset();
      const wasJoined = this.state === CHANNEL_STATES.joined
        || this.state === CHANNEL_STATES.joining;
      this._cancelJoinPush();
      if (!wasJoined || !this.client.isConnected()) {
        this._closed(null);
        return Promise.resolve(REPLY_STATUS.ok);
      }
      this.state = CHANNEL_STATES.leaving;
      const push = new Push(EVENTS.leave, {}, {expectReply: true,
        timeoutMs: this.client.timeoutMs});
      this._sendPush(push);
      return push.promise.then((status) => {
        this._closed(null);
        return status === REPLY_STATUS.timeout ? status : REPLY_STATUS.ok;
      });
    }

    /**
     * Send a message. `{type: 'broadcast', event, payload}` is a broadcast (the payload
     * may be an ArrayBuffer or typed array under vsn 2.0.0). With `config.broadcast.ack`
     * the promise resolves on the server's reply ('ok', 'error' or 'timed out'); without
     * it, once the frame is written. Pushes made before the channel is joined wait in a
     * bounded buffer; when it is full the oldest resolves 'dropped'.
     * @param {{type: string, event: string, payload?: any}} message
     * @returns {Promise<string>}
     */
    send(message) {
      if (!message || message.type !== PUSH_TYPES.broadcast) {
        throw new TypeError("send() takes {type: 'broadcast', event, payload}");
      }
      const payload = {type: PUSH_TYPES.broadcast, event: message.event,
        payload: message.payload};
      return this._push(EVENTS.broadcast, payload, Boolean(this.config.broadcast.ack));
    }

    /**
     * Track this client's presence on the channel (a second call updates the meta). The
     * meta is tracked again after every rejoin, until `untrack()`.
     * @param {object} meta JSON object shown to everyone on the topic
     * @returns {Promise<string>} 'ok' | 'error' | 'timed out' | 'dropped'
     */
    track(meta) {
      this._trackedMeta = meta || {};
      return this._push(EVENTS.presence, {type: PUSH_TYPES.presence,
        event: PRESENCE_EVENTS.track, payload: meta || {}}, true);
    }

    /** Stop tracking presence. @returns {Promise<string>} */
    untrack() {
      this._trackedMeta = null;
      return this._push(EVENTS.presence, {type: PUSH_TYPES.presence,
        event: PRESENCE_EVENTS.untrack}, true);
    }

    /** Current presence: `{key: [{...meta, presence_ref}, …]}`. */
    presenceState() {
      return Presence.list(this._presence.state);
    }

    // -- joining --------------------------------------------------------------------------

    _joinPayload() {
      const payload = {config: {
        broadcast: this.config.broadcast,
        presence: {...this.config.presence, enabled: this.config.presence.enabled
          || this._bindings.some((b) => b.type === EVENTS.presence)},
        postgres_changes: this._pgFilters,
        private: this.config.private,
      }};
      const token = this.client.accessToken;
      if (token) payload.access_token = token;
      return payload;
    }

    _join() {
      this._cancelJoinPush();
      this._rejoinTimer.cancel();
      this.state = CHANNEL_STATES.joining;
      const push = new Push(EVENTS.join, this._joinPayload(), {expectReply: true,
        timeoutMs: this.client.timeoutMs});
      push.ref = this.client._makeRef();
      this.joinRef = push.ref;
      this._joinPush = push;
      this.client._log('info', `joining ${this.topic}`);
      this._pending.set(push.ref, push);
      push.startTimeout((p) => this._onJoinTimeout(p));
      push.promise.then((status) => this._onJoinReply(push, status));
      this.client._write({joinRef: push.ref, ref: push.ref, topic: this.topic,
        event: EVENTS.join, payload: push.payload});
    }

    _onJoinReply(push, status) {
      if (push !== this._joinPush) return;
      this._joinPush = null;
      if (status === REPLY_STATUS.ok) this._onJoined(push.reply.response || {});
      else if (status === REPLY_STATUS.error) {
        const reason = push.reply.response && push.reply.response.reason;
        this.client._log('info', `join of ${this.topic} refused: ${reason}`);
        this.state = CHANNEL_STATES.errored;
        this._notify(SUBSCRIBE_STATES.channelError, new Error(reason || 'join refused'));
        this._scheduleRejoin();
      }
    }

    _onJoinTimeout(push) {
      if (push !== this._joinPush) return;
      this._joinPush = null;
      this._pending.delete(push.ref);
      push.settle(REPLY_STATUS.timeout, null);
      this.client._log('info', `join of ${this.topic} timed out`);
      if (this.client.isConnected()) {
        this.client._write({joinRef: this.joinRef, ref: this.client._makeRef(),
          topic: this.topic, event: EVENTS.leave, payload: {}});
      }
      // Every frame of the abandoned join (its late reply, the phx_close of the leave) is
      // stale from now on.
      this.joinRef = null;
      this.state = CHANNEL_STATES.errored;
      this._notify(SUBSCRIBE_STATES.timedOut);
      this._scheduleRejoin();
    }

    _onJoined(response) {
      const serverBindings = response.postgres_changes || [];
      const ids = [];
      for (let i = 0; i < this._pgFilters.length; i += 1) {
        const mine = this._pgFilters[i];
        const theirs = serverBindings[i];
        const matches = theirs && sameValue(mine.event, theirs.event)
          && sameValue(mine.schema, theirs.schema) && sameValue(mine.table, theirs.table)
          && sameValue(mine.filter, theirs.filter);
        if (!matches) {
          this.client._log('error', `${this.topic}: ${BINDINGS_MISMATCH}`);
          this.unsubscribe();
          this._notify(SUBSCRIBE_STATES.channelError, new Error(BINDINGS_MISMATCH));
          this._rejectWaiters(new Error(BINDINGS_MISMATCH));
          return;
        }
        ids[i] = theirs.id;
      }
      for (const binding of this._bindings) {
        if (binding.pgIndex >= 0) binding.id = ids[binding.pgIndex];
      }
      this.state = CHANNEL_STATES.joined;
      this._rejoinTimer.reset();
      this.client._log('info', `joined ${this.topic}`);
      this._notify(SUBSCRIBE_STATES.subscribed);
      const waiters = this._subscribeWaiters.splice(0);
      for (const w of waiters) w.resolve(SUBSCRIBE_STATES.subscribed);
      const buffered = this._buffer.splice(0);
      // A rejoin is a new presence on the server: track again what was tracked before.
      if (this._trackedMeta !== null && !buffered.some((p) => p.event === EVENTS.presence)) {
        this.track(this._trackedMeta);
      }
      for (const push of buffered) this._sendPush(push);
    }

    _rejoinNow() {
      if (this._wantJoined && this.client.isConnected()
        && this.state !== CHANNEL_STATES.joined) {
        this._join();
      }
    }

    _scheduleRejoin() {
      if (this._wantJoined) this._rejoinTimer.schedule();
    }

    _cancelJoinPush() {
      if (this._joinPush) {
        this._pending.delete(this._joinPush.ref);
        const push = this._joinPush;
        this._joinPush = null;
        push.settle(REPLY_STATUS.error, null);
      }
    }

    // -- socket events (called by the client) ---------------------------------------------

    _onSocketOpen() {
      this._rejoinTimer.reset();
      if (this._wantJoined && this.state !== CHANNEL_STATES.joined) this._join();
    }

    _onSocketLost(reason) {
      this._rejoinTimer.cancel();
      this._cancelJoinPush();
      this._failPending();
      if (this.state === CHANNEL_STATES.joined || this.state === CHANNEL_STATES.joining) {
        this.state = CHANNEL_STATES.errored;
        this._notify(SUBSCRIBE_STATES.channelError, new Error(reason));
      }
    }

    _failPending() {
      for (const push of this._pending.values()) {
        if (push !== this._joinPush) push.settle(REPLY_STATUS.error, null);
      }
      this._pending.clear();
    }

    _closed(error) {
      const was = this.state;
      this.state = CHANNEL_STATES.closed;
      this._wantJoined = false;
      this._rejoinTimer.reset();
      this._cancelJoinPush();
      this._failPending();
      for (const push of this._buffer.splice(0)) push.settle(REPLY_STATUS.dropped, null);
      this.client._forgetChannel(this);
      if (was !== CHANNEL_STATES.closed) this._notify(SUBSCRIBE_STATES.closed, error);
      this._rejectWaiters(error || new Error('channel closed'));
    }

    _rejectWaiters(error) {
      const waiters = this._subscribeWaiters.splice(0);
      for (const w of waiters) w.reject(error);
    }

    _notify(status, error) {
      for (const cb of this._statusCallbacks) {
        try {
          cb(status, error);
        } catch (err) {
          this.client._log('error', `subscribe callback of ${this.topic} failed`, err);
        }
      }
    }

    // -- pushes ---------------------------------------------------------------------------

    _push(event, payload, expectReply) {
      const push = new Push(event, payload, {expectReply, timeoutMs: this.client.timeoutMs});
      push.startTimeout((p) => {
        this._pending.delete(p.ref);
        const i = this._buffer.indexOf(p);
        if (i >= 0) this._buffer.splice(i, 1);
        p.settle(REPLY_STATUS.timeout, null);
      });
      if (this.state === CHANNEL_STATES.joined && this.client.isConnected()) {
        this._sendPush(push);
      } else {
        this._buffer.push(push);
        while (this._buffer.length > this.client.pushBufferSize) {
          const dropped = this._buffer.shift();
          this.droppedPushes += 1;
          this.client._log('warn', `${this.topic}: push buffer full, dropped a ${dropped.event}`);
          dropped.settle(REPLY_STATUS.dropped, null);
        }
      }
      return push.promise;
    }

    _sendPush(push) {
      push.ref = this.client._makeRef();
      if (push.expectReply) this._pending.set(push.ref, push);
      this.client._write({joinRef: this.joinRef, ref: push.ref, topic: this.topic,
        event: push.event, payload: push.payload});
      if (!push.expectReply) push.settle(REPLY_STATUS.ok, null);
    }

    _pushAccessToken(token) {
      if (this.state !== CHANNEL_STATES.joined || !this.client.isConnected()) return;
      this.client._write({joinRef: this.joinRef, ref: this.client._makeRef(),
        topic: this.topic, event: EVENTS.accessToken, payload: {access_token: token}});
    }

    // -- inbound --------------------------------------------------------------------------

    _isStale(msg) {
      if (msg.joinRef !== null && msg.joinRef !== this.joinRef) return true;
      // vsn 1.0.0 carries no join_ref; close and error put it in `ref` instead.
      return (msg.event === EVENTS.close || msg.event === EVENTS.error)
        && msg.ref !== null && msg.ref !== this.joinRef;
    }

    _receive(msg) {
      if (this._isStale(msg)) {
        this.client._log('debug', `dropped a stale ${msg.event} on ${this.topic}`);
        return;
      }
      switch (msg.event) {
        case EVENTS.reply: {
          const push = this._pending.get(msg.ref);
          if (!push) return;
          this._pending.delete(msg.ref);
          const payload = msg.payload || {};
          push.settle(payload.status === REPLY_STATUS.ok ? REPLY_STATUS.ok : REPLY_STATUS.error,
            payload.response);
          return;
        }
        case EVENTS.close:
          this.client._log('info', `${this.topic} closed by the server`);
          this._closed(null);
          return;
        case EVENTS.error:
          this.client._log('info', `${this.topic} errored on the server; rejoining`);
          this._cancelJoinPush();
          this._failPending();
          this.state = CHANNEL_STATES.errored;
          this._notify(SUBSCRIBE_STATES.channelError, new Error('channel error'));
          this._scheduleRejoin();
          return;
        case EVENTS.presenceState:
          this._onPresenceState(msg.payload || {});
          return;
        case EVENTS.presenceDiff:
          this._onPresenceDiff(msg.payload || {});
          return;
        case EVENTS.postgresChanges:
          this._onPostgresChanges(msg.payload || {});
          return;
        case EVENTS.broadcast:
          this._dispatch(EVENTS.broadcast, msg.payload || {}, (b) => {
            const want = b.filter.event;
            return want === WILDCARD || lower(want) === lower((msg.payload || {}).event);
          });
          return;
        default:
          this._dispatch(msg.event, msg.payload, () => true);
      }
    }

    _dispatch(type, arg, matches) {
      for (const binding of this._bindings) {
        if (binding.type === type && matches(binding)) this._call(binding, arg);
      }
    }

    _call(binding, arg) {
      try {
        binding.callback(arg);
      } catch (err) {
        this.client._log('error', `a ${binding.type} callback on ${this.topic} failed`, err);
      }
    }

    _onPostgresChanges(payload) {
      const ids = payload.ids || [];
      const data = payload.data || {};
      const type = data.type;
      const change = {
        schema: data.schema,
        table: data.table,
        commit_timestamp: data.commit_timestamp,
        eventType: type,
        new: (type === CHANGE_TYPES.insert || type === CHANGE_TYPES.update)
          ? (data.record || {}) : {},
        old: (type === CHANGE_TYPES.update || type === CHANGE_TYPES.delete)
          ? (data.old_record || {}) : {},
        errors: data.errors ?? null,
        columns: data.columns || [],
      };
      this._dispatch(EVENTS.postgresChanges, change, (b) => b.id !== null
        && ids.includes(b.id) && (b.filter.event === undefined || b.filter.event === WILDCARD
          || lower(b.filter.event) === lower(type)));
    }

    _onPresenceState(newState) {
      const presence = this._presence;
      presence.joinRef = this.joinRef;
      const {onJoin, onLeave} = this._presenceCallbacks();
      presence.state = Presence.syncState(presence.state, newState, onJoin, onLeave);
      for (const diff of presence.pendingDiffs.splice(0)) {
        presence.state = Presence.syncDiff(presence.state, diff, onJoin, onLeave);
      }
      this._presenceSync();
    }

    _onPresenceDiff(diff) {
      const presence = this._presence;
      if (presence.joinRef === null || presence.joinRef !== this.joinRef) {
        presence.pendingDiffs.push(diff);
        return;
      }
      const {onJoin, onLeave} = this._presenceCallbacks();
      presence.state = Presence.syncDiff(presence.state, diff, onJoin, onLeave);
      this._presenceSync();
    }

    _presenceCallbacks() {
      const fire = (event, arg) => this._dispatch(EVENTS.presence, arg,
        (b) => b.filter.event === event);
      return {
        onJoin: (key, current, joined) => fire(PRESENCE_EVENTS.join, {event: PRESENCE_EVENTS.join,
          key, currentPresences: Presence.metas(current), newPresences: Presence.metas(joined)}),
        onLeave: (key, current, left) => fire(PRESENCE_EVENTS.leave, {
          event: PRESENCE_EVENTS.leave, key, currentPresences: Presence.metas(current),
          leftPresences: Presence.metas(left)}),
      };
    }

    _presenceSync() {
      this._dispatch(EVENTS.presence, {event: PRESENCE_EVENTS.sync},
        (b) => b.filter.event === PRESENCE_EVENTS.sync);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Client: one websocket, its heartbeat and reconnects, and its channels
  // ---------------------------------------------------------------------------------------

  /**
   * A connection to a Realtime endpoint.
   *
   * Options:
   * - `apikey` (string): sent as the `apikey` query parameter; also the channels' access
   *   token until `setAuth()` gives another. Supabase requires it; a Django gateway page
   *   may rely on the session instead.
   * - `accessToken` (string): the token channels join with (default: `apikey`).
   * - `vsn` ('2.0.0' | '1.0.0', default '2.0.0').
   * - `params` (object): extra query parameters (e.g. `{log_level: 'info'}`).
   * - `heartbeatIntervalMs` (25000), `timeoutMs` (10000: join and push replies).
   * - `reconnectAfterMs(tries)`, `rejoinAfterMs(tries)`: delays in ms (default: 1, 2, 5,
   *   then 10 s forever, jittered by up to 25 %).
   * - `pushBufferSize` (100): pushes kept per channel while it is not joined.
   * - `logger(level, message, detail)`: receives 'debug' | 'info' | 'warn' | 'error'
   *   lines (tokens are never passed to it).
   * - `WebSocket`: a WebSocket constructor (default: the global one).
   */
  class RealtimeClient {
    /**
     * @param {string} endpoint e.g. 'wss://host/realtime/v1' ('/websocket' is appended;
     *   http(s) becomes ws(s))
     * @param {object} options see the class description
     */
    constructor(endpoint, options) {
      const opts = options || {};
      this.endpoint = endpoint.replace(/\/+$/, '').replace(/^http(s?):/, 'ws$1:');
      this.apikey = opts.apikey || null;
      this.accessToken = opts.accessToken || this.apikey;
      this.vsn = opts.vsn || DEFAULTS.vsn;
      if (this.vsn !== VSN_1 && this.vsn !== VSN_2) {
        throw new TypeError(`unsupported vsn ${this.vsn}; use ${VSN_2} or ${VSN_1}`);
      }
      this.serializer = this.vsn === VSN_2 ? V2Serializer : V1Serializer;
      this.params = opts.params || {};
      this.heartbeatIntervalMs = opts.heartbeatIntervalMs || DEFAULTS.heartbeatIntervalMs;
      this.timeoutMs = opts.timeoutMs || DEFAULTS.timeoutMs;
      this.pushBufferSize = opts.pushBufferSize ?? DEFAULTS.pushBufferSize;
      this._reconnectAfterMs = opts.reconnectAfterMs || backoff(DEFAULTS.reconnectScheduleMs);
      this._rejoinAfterMs = opts.rejoinAfterMs || backoff(DEFAULTS.rejoinScheduleMs);
      this._logger = opts.logger || null;
      this._WebSocket = opts.WebSocket || globalThis.WebSocket;
      this._ws = null;
      this._ref = 0;
      this._channels = new Map();
      this._listeners = {open: [], close: [], error: [], heartbeat: []};
      this._wantConnected = false;
      this._heartbeatTimer = null;
      this._pendingHeartbeat = null;
      this._reconnectTimer = new RetryTimer(() => this._open(), this._reconnectAfterMs);
      /** Counters for tests and dashboards. */
      this.stats = {connects: 0, reconnects: 0, heartbeatTimeouts: 0};
    }

    /** The websocket URL: `<endpoint>/websocket?apikey=…&<params>&vsn=…`. */
    endpointURL() {
      const base = this.endpoint.endsWith(WEBSOCKET_PATH)
        ? this.endpoint : this.endpoint + WEBSOCKET_PATH;
      const query = new URLSearchParams({...(this.apikey ? {apikey: this.apikey} : {}),
        ...this.params, vsn: this.vsn});
      return `${base}?${query}`;
    }

    /**
     * Register a connection callback.
     * @param {'open'|'close'|'error'|'heartbeat'} event `close` gets the CloseEvent;
     *   `heartbeat` gets 'sent' | 'ok' | 'error' | 'timeout'
     * @param {Function} callback
     */
    on(event, callback) {
      this._listeners[event].push(callback);
      return this;
    }

    /** Open the socket (no-op when already open or connecting). */
    connect() {
      this._wantConnected = true;
      if (this._ws) return;
      this._reconnectTimer.cancel();
      this._open();
    }

    /**
     * Close the socket and stop reconnecting. Channels stay registered and rejoin on the
     * next `connect()`.
     * @returns {Promise<void>} resolves once the socket is closed
     */
    disconnect(code = CLOSE_NORMAL, reason = LEAVE_REASON) {
      this._wantConnected = false;
      this._reconnectTimer.reset();
      const ws = this._ws;
      if (!ws) return Promise.resolve();
      const closed = new Promise((resolve) => ws.addEventListener('close', () => resolve()));
      ws.close(code, reason);
      return closed;
    }

    /** @returns {boolean} whether the socket is open */
    isConnected() {
      return Boolean(this._ws) && this._ws.readyState === 1;
    }

    /** @returns {string} 'connecting' | 'open' | 'closing' | 'closed' */
    connectionState() {
      const states = [SOCKET_STATES.connecting, SOCKET_STATES.open, SOCKET_STATES.closing,
        SOCKET_STATES.closed];
      return this._ws ? states[this._ws.readyState] : SOCKET_STATES.closed;
    }

    /**
     * The channel for `name` (the `realtime:` prefix is added); the same object is
     * returned while it exists.
     * @param {string} name e.g. 'room:lobby'
     * @param {{broadcast?: {ack?: boolean, self?: boolean}, presence?: {key?: string,
     *   enabled?: boolean}, private?: boolean}} [config]
     * @returns {Channel}
     */
    channel(name, config) {
      const topic = name.startsWith(TOPIC_PREFIX) ? name : TOPIC_PREFIX + name;
      let channel = this._channels.get(topic);
      if (!channel) {
        channel = new Channel(this, topic, config);
        this._channels.set(topic, channel);
      }
      return channel;
    }

    /** @returns {Channel[]} the registered channels */
    getChannels() {
      return [...this._channels.values()];
    }

    /**
     * Leave a channel and forget it.
     * @param {Channel} channel
     * @returns {Promise<string>}
     */
    removeChannel(channel) {
      // The channel forgets itself once closed: the leave reply still has to reach it.
      return channel.unsubscribe();
    }

    /** Leave and forget every channel. @returns {Promise<string[]>} */
    removeAllChannels() {
      return Promise.all(this.getChannels().map((ch) => this.removeChannel(ch)));
    }

    /**
     * Use `token` for every channel from now on: later joins and rejoins carry it, and
     * joined channels are sent `access_token` when it changed.
     * @param {string|null} token a JWT; `null` goes back to the apikey
     */
    setAuth(token) {
      const next = token || this.apikey;
      if (next === this.accessToken) return;
      this.accessToken = next;
      if (!next) return;
      for (const channel of this._channels.values()) channel._pushAccessToken(next);
    }

    // -- socket lifecycle -----------------------------------------------------------------

    _open() {
      if (!this._wantConnected || this._ws) return;
      this._log('debug', 'connecting');
      let ws;
      try {
        ws = new this._WebSocket(this.endpointURL());
      } catch (err) {
        this._log('error', 'could not open the websocket', err);
        this._reconnectTimer.schedule();
        return;
      }
      ws.binaryType = 'arraybuffer';
      this._ws = ws;
      ws.onopen = () => this._onOpen(ws);
      ws.onmessage = (event) => this._onMessage(ws, event.data);
      ws.onerror = (event) => {
        if (ws === this._ws) this._emit('error', event);
      };
      ws.onclose = (event) => this._onClose(ws, event);
    }

    _onOpen(ws) {
      if (ws !== this._ws) return;
      if (this.stats.connects > 0) this.stats.reconnects += 1;
      this.stats.connects += 1;
      this._log('info', `connected (vsn ${this.vsn})`);
      this._reconnectTimer.reset();
      this._startHeartbeat();
      this._emit('open');
      for (const channel of this._channels.values()) channel._onSocketOpen();
    }

    _onClose(ws, event) {
      if (ws !== this._ws) return;
      this._ws = null;
      this._stopHeartbeat();
      this._log('info', `socket closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`);
      for (const channel of this._channels.values()) {
        channel._onSocketLost(`socket closed (${event.code})`);
      }
      this._emit('close', event);
      if (this._wantConnected) {
        this._reconnectTimer.schedule();
        this._log('info', `reconnecting, try ${this._reconnectTimer.tries}`);
      }
    }

    _onMessage(ws, raw) {
      if (ws !== this._ws) return;
      let msg;
      try {
        msg = this.serializer.decode(raw);
      } catch (err) {
        this._log('error', 'could not decode a frame', err);
        return;
      }
      if (!msg) {
        this._log('debug', '< an undecodable binary frame');
        return;
      }
      this._log('debug', `< ${msg.topic} ${msg.event}`);
      if (msg.topic === PHOENIX_TOPIC) {
        if (msg.event === EVENTS.reply && msg.ref !== null && msg.ref === this._pendingHeartbeat) {
          this._pendingHeartbeat = null;
          const ok = (msg.payload || {}).status === REPLY_STATUS.ok;
          this._emit('heartbeat', ok ? HEARTBEAT_STATUS.ok : HEARTBEAT_STATUS.error);
        }
        return;
      }
      const channel = this._channels.get(msg.topic);
      if (channel) channel._receive(msg);
    }

    // -- heartbeat ------------------------------------------------------------------------

    _startHeartbeat() {
      this._stopHeartbeat();
      this._heartbeatTimer = setInterval(() => this._heartbeat(), this.heartbeatIntervalMs);
    }

    _stopHeartbeat() {
      clearInterval(this._heartbeatTimer);
      this._heartbeatTimer = null;
      this._pendingHeartbeat = null;
    }

    _heartbeat() {
      if (!this.isConnected()) return;
      if (this._pendingHeartbeat !== null) {
        this.stats.heartbeatTimeouts += 1;
        this._log('info', 'heartbeat timeout; reconnecting');
        this._emit('heartbeat', HEARTBEAT_STATUS.timeout);
        const ws = this._ws;
        // Treat the socket as lost now: the close handshake may never complete.
        this._onClose(ws, {code: CLOSE_NORMAL, reason: HEARTBEAT_TIMEOUT_REASON});
        ws.close(CLOSE_NORMAL, HEARTBEAT_TIMEOUT_REASON);
        return;
      }
      const ref = this._makeRef();
      this._pendingHeartbeat = ref;
      this._write({joinRef: null, ref, topic: PHOENIX_TOPIC, event: EVENTS.heartbeat,
        payload: {}});
      this._emit('heartbeat', HEARTBEAT_STATUS.sent);
    }

    // -- plumbing for channels ------------------------------------------------------------

    _makeRef() {
      this._ref += 1;
      return String(this._ref);
    }

    _write(msg) {
      if (!this.isConnected()) return false;
      this._log('debug', `> ${msg.topic} ${msg.event}`);
      this._ws.send(this.serializer.encode(msg));
      return true;
    }

    _ensureChannel(channel) {
      if (!this._channels.has(channel.topic)) this._channels.set(channel.topic, channel);
    }

    _forgetChannel(channel) {
      if (this._channels.get(channel.topic) === channel) this._channels.delete(channel.topic);
    }

    _emit(event, arg) {
      for (const cb of this._listeners[event]) {
        try {
          cb(arg);
        } catch (err) {
          this._log('error', `a ${event} callback failed`, err);
        }
      }
    }

    _log(level, message, detail) {
      if (this._logger) this._logger(level, message, detail);
    }
  }

  return Object.freeze({
    RealtimeClient,
    Channel,
    Presence,
    V1Serializer,
    V2Serializer,
    backoff,
    VSN_1,
    VSN_2,
    EVENTS,
    SUBSCRIBE_STATES,
    CHANNEL_STATES,
    SOCKET_STATES,
    HEARTBEAT_STATUS,
  });
});
