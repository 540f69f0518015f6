// RelayClient: one agent's connection to one relay (docs/protocol/relay.md).
//
// What it owns: its timers (registration retries, keepalive, UDP -> WebSocket fallback,
// accept-set retransmission) and, on the WebSocket transport, its WebSocket. What it does
// not own: a UDP socket — the agent demultiplexes its one shared socket by first byte
// (isRelayFrame in wire.ts) and passes every relay datagram from the relay's address to
// handleDatagram(); the client answers through the sendUdp function it was given. For
// networks that block UDP it opens its own WebSocket to ws[s]://host:httpPort/relay
// (optionally through an HTTP(S) proxy) and speaks the same frames there. Transport 'auto'
// tries UDP first and falls back to WebSocket when the relay has not answered over UDP
// within udpFallbackMs.
//
// Registration: HELLO(nonce) -> CHALLENGE(cookie, nonce) -> REGISTER(cookie, IK msg 1) ->
// REGISTERED(IK msg 2: registered or rejected). The handshake's split() gives the control
// keys that authenticate RESTARTING, PEER_GONE, KEY_CONFLICT, ACCEPT_ACK (relay -> agent)
// and ACCEPT_FROM, LEAVE (agent -> relay); nothing else is encrypted with them (the payloads we
// forward are already end-to-end encrypted by the agents). Unauthenticated frames never
// change the registration: a NOT_REGISTERED only starts a rate-limited parallel
// registration while the current one stays in use.
//
// API: start(), close(), leave(), send(peerKey, payload), handleDatagram(buf), setAcceptFrom(keys);
// getters state, transport, publicKey; events 'packet', 'peerGone', 'state', 'keyConflict'.
import { EventEmitter } from 'node:events';
import { timingSafeEqual } from 'node:crypto';
import type { Agent as HttpAgent } from 'node:http';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { HandshakeState, type KeyPair } from '../noise/index.js';
import { PeerKey } from '../common/peer-key.js';
import {
  FRAME_ACCEPT_ACK, FRAME_ACCEPT_FROM, FRAME_CHALLENGE, FRAME_KEY_CONFLICT, FRAME_NOT_REGISTERED,
  FRAME_LEAVE, FRAME_PEER_GONE, FRAME_PONG, FRAME_RECV, FRAME_REGISTERED, FRAME_RESTARTING, KEY_SIZE,
  MAX_ACCEPT_KEYS, MAX_FRAME_SIZE, NOISE_PROTOCOL, FRAME_SEND, NONCE_SIZE, RECV_HEADER_SIZE, REG_TOKEN_SIZE, SEND_HEADER_SIZE, STATUS_REGISTERED, TOKEN_SIZE, DEFAULT_MAX_PAYLOAD,
  acceptFromBody, dataFrameProblem, decodeFrame, decodeRegisteredPayload, encodeHello, encodePing, encodeRegister,
  encodeSend, registrationPrologue, type RelayFrame,
} from './wire.js';
import { controlKeysOf, type ControlKeys } from './control-auth.js';
import { proxyAgentFor } from './ws-proxy.js';

export type RelayTransport = 'udp' | 'ws';
export type RelayTransportMode = RelayTransport | 'auto';
/** idle: not started; registering: handshake in flight; registered: can send;
 *  rejected: the relay refused our key (retrying slowly); closed: close() was called */
export type RelayClientState = 'idle' | 'registering' | 'registered' | 'rejected' | 'closed';

export interface RelayClientOptions {
  /** relay public key: a PeerKey, 32 bytes or base64 */
  relayKey: PeerKey | Uint8Array | string;
  /** this agent's static X25519 key pair */
  keyPair: KeyPair;
  /** default: 'auto' when both sendUdp and wsUrl are given, else the one available */
  transport?: RelayTransportMode;
  /** sends one datagram to the relay's UDP address over the agent's shared socket */
  sendUdp?: (frame: Uint8Array) => void;
  /** e.g. wss://relay.example.org:443/relay (see relayWsUrl) */
  wsUrl?: string;
  /** an http(s) proxy URL for the WebSocket (CONNECT); default: HTTPS_PROXY / HTTP_PROXY
   *  from the environment (honouring NO_PROXY); '' = never use a proxy */
  proxy?: string;
  /** a ready agent for the WebSocket (tests; overrides proxy) */
  wsAgent?: HttpAgent;
  /** extra TLS trust for wss:// (PEM), e.g. a private CA; default: the system's */
  wsCa?: string | Buffer;
  /** auto mode: switch to WebSocket after this long without a UDP answer (default 1500) */
  udpFallbackMs?: number;
  /** first registration retransmission interval, doubling to 8 s (default 500) */
  retryMs?: number;
  /** override the keepalive interval the relay suggests (ms) */
  keepaliveMs?: number;
  /** drop SENDs while the WebSocket has more than this many bytes buffered (default 1 MiB) */
  maxWsBuffered?: number;
  logger?: Logger;
}

export interface RelayClientEvents {
  /** a packet another agent sent us through the relay (key in text form, and the cached
   *  PeerKey itself for a lookup by id); payload is a view, copy to keep */
  packet: [fromKey: string, payload: Uint8Array, from: PeerKey];
  /** the relay says this key is not registered (our SEND to it was dropped); authenticated */
  peerGone: [key: string];
  /** on every state change, and 'registered' again whenever a registration completes while
   *  registered (a parallel one renewed the binding, e.g. after a NAT rebinding) */
  state: [state: RelayClientState, transport: RelayTransport | undefined];
  /** the relay saw our key registered from another place too, each evicting the other
   *  (the same key file in two agents); authenticated */
  keyConflict: [];
}

/** ws:// or, with tls, wss:// URL of a relay's WebSocket endpoint. */
export function relayWsUrl(host: string, httpPort: number, opts: { tls?: boolean } = {}): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${opts.tls ? 'wss' : 'ws'}://${h}:${httpPort}/relay`;
}

/** The WebSocket URL of a relay address as a session file names it (wss:// for /https:PORT); undefined without an HTTP port. */
export function relayWsUrlOf(r: { host: string; httpPort?: number; tls?: boolean }): string | undefined {
  return r.httpPort === undefined ? undefined : relayWsUrl(r.host, r.httpPort, { tls: r.tls === true });
}

/** Are the KEY_SIZE bytes of `frame` at `at` this key? (public keys: no constant time needed) */
function keyAt(frame: Uint8Array, at: number, key: Uint8Array): boolean {
  for (let i = 0; i < KEY_SIZE; i++) if (frame[at + i] !== key[i]) return false;
  return true;
}

/** A NOT_REGISTERED starts at most one parallel registration per this long. */
const NOT_REGISTERED_EVERY_MS = 5000;
const ACCEPT_RETRY_MS = 1000;
const REJECTED_RETRY_MS = 30_000;
/** leave() over WebSocket: the relay has this long to answer the close handshake (the LEAVE
 *  goes out ahead of it) before the connection is torn down */
const WS_LEAVE_CLOSE_MS = 1000;
/** bounded id -> key cache so RECV frames name their sender without a base64 encode */
const KEY_CACHE = 4096;
/** senders a RECV is matched against by its key bytes before the id cache (no string made):
 *  a session's few peers */
const RECENT_SENDERS = 8;

interface Attempt {
  nonce: Uint8Array;
  hs: HandshakeState | undefined;
  /** true: the current registration stays in use while this one runs (until it completes,
   *  or a PONG shows the relay still knows us); retransmitted like any registration */
  parallel: boolean;
  hellos: number;
  timer: NodeJS.Timeout | undefined;
}

export class RelayClient extends EventEmitter<RelayClientEvents> {
  private readonly relayKey: PeerKey;
  private readonly keyPair: KeyPair;
  private readonly mode: RelayTransportMode;
  private readonly sendUdpFn: ((f: Uint8Array) => void) | undefined;
  private readonly wsUrl: string | undefined;
  private readonly wsAgent: HttpAgent | undefined;
  private readonly wsCa: string | Buffer | undefined;
  private readonly udpFallbackMs: number;
  private readonly retryMs: number;
  private readonly keepaliveOverride: number | undefined;
  private readonly maxWsBuffered: number;
  private readonly log: Logger | undefined;
  private readonly keyById = new Map<string, PeerKey>();
  private readonly keyByText = new Map<string, PeerKey>();
  /** the latest distinct RECV senders, newest first (senderOf) */
  private readonly recentSenders: PeerKey[] = [];

  private _state: RelayClientState = 'idle';
  private _transport: RelayTransport | undefined;
  private ws: WebSocket | undefined;
  private attempt: Attempt | undefined;
  /** the control keys of the registration in use */
  private ctl: ControlKeys | undefined;
  /** its registration token: every SEND and PING carries it (spoofed ones do not) */
  private regToken: Uint8Array | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private fallbackTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private acceptTimer: NodeJS.Timeout | undefined;
  private currentRetry: number;
  private keepaliveMs = 10_000;
  /** last authentic sign of the relay (matching PONG, REGISTERED, authenticated frame) */
  private lastHeard = 0;
  private registeredAt = 0;
  private lastParallel = -Infinity;
  private pingToken: Uint8Array | undefined;
  private acceptKeys: PeerKey[] | undefined;
  /** counter of the ACCEPT_FROM not yet acknowledged */
  private acceptPending: number | undefined;
  /** an accept set was sent during the current registration */
  private acceptSent = false;
  /** counters for status displays and tests: badFrames = malformed or unexpected;
   *  spoofed = failed authentication (nonce, token, tag or handshake); handlerErrors = a
   *  bug (a handler threw), never expected */
  readonly stats = { sent: 0, received: 0, dropped: 0, registrations: 0, badFrames: 0, spoofed: 0, notRegistered: 0, handlerErrors: 0 };

  constructor(opts: RelayClientOptions) {
    super();
    const rk = opts.relayKey;
    this.relayKey = rk instanceof PeerKey ? rk : typeof rk === 'string' ? PeerKey.fromText(rk, 'relay key') : PeerKey.fromBytes(rk);
    this.keyPair = opts.keyPair;
    this.sendUdpFn = opts.sendUdp;
    this.wsUrl = opts.wsUrl;
    this.mode = opts.transport ?? (opts.sendUdp && opts.wsUrl ? 'auto' : opts.sendUdp ? 'udp' : 'ws');
    if (this.mode !== 'ws' && !this.sendUdpFn) throw new Error(`relay transport ${this.mode} needs sendUdp`);
    if (this.mode !== 'udp' && !this.wsUrl) throw new Error(`relay transport ${this.mode} needs wsUrl`);
    this.wsAgent = opts.wsAgent ?? (this.wsUrl ? proxyAgentFor(this.wsUrl, opts.proxy) : undefined);
    this.wsCa = opts.wsCa;
    this.udpFallbackMs = opts.udpFallbackMs ?? 1500;
    this.retryMs = opts.retryMs ?? 500;
    this.currentRetry = this.retryMs;
    this.keepaliveOverride = opts.keepaliveMs;
    this.maxWsBuffered = opts.maxWsBuffered ?? 1 << 20;
    this.log = opts.logger;
  }

  get state(): RelayClientState { return this._state; }
  /** transport in use (or being tried) */
  get transport(): RelayTransport | undefined { return this._transport; }
  /** base64 key of this agent */
  get publicKey(): string { return PeerKey.fromBytes(this.keyPair.publicKey).text; }

  /** Begin registering (no-op if already started). */
  start(): void {
    if (this._state !== 'idle') return;
    this.beginRegistration(this.mode === 'ws' ? 'ws' : 'udp');
  }

  /** Stop: close the WebSocket, clear timers, zero every key. Emits state 'closed'. */
  close(): void {
    this.end(false);
  }

  /**
   * Stop for good, telling the relay: when registered, one LEAVE (sealed with our control
   * key) over the transport in use, so the relay forgets us now rather than at expiry and
   * our peers' packets to us get PEER_GONE; then close() (over WebSocket a normal close that
   * sends the LEAVE first, bounded by WS_LEAVE_CLOSE_MS). Best effort: nothing is awaited or
   * retransmitted (a lost LEAVE leaves the relay's expiry to do it); never throws. Returns
   * whether a LEAVE was handed to the transport.
   */
  leave(): boolean {
    if (this._state === 'closed') return false;
    let sent = false;
    try {
      if (this._state === 'registered' && this.ctl) sent = this.transmit(this.ctl.seal(FRAME_LEAVE));
    } catch { /* best effort: the close below is what matters */ }
    this.end(sent);
    return sent;
  }

  /** close() and leave(): `flushWs` closes the WebSocket after what it has buffered. */
  private end(flushWs: boolean): void {
    if (this._state === 'closed') return;
    this.clearTimers();
    this.endAttempt();
    this.endRegistration();
    this.closeWs(flushWs);
    this.setState('closed');
  }

  /**
   * Send an opaque packet to another agent's key (PeerKey, base64 or 32 bytes). Returns
   * false (and counts a drop) when not registered or the WebSocket is backed up.
   */
  send(peerKey: PeerKey | string | Uint8Array, payload: Uint8Array): boolean {
    if (this._state !== 'registered' || !this.regToken || payload.length > DEFAULT_MAX_PAYLOAD) { this.stats.dropped++; return false; }
    let key: Uint8Array;
    if (peerKey instanceof PeerKey) key = peerKey.bytes;
    else if (typeof peerKey === 'string') {
      const k = this.keyFromText(peerKey);
      if (!k) { this.stats.dropped++; return false; }
      key = k.bytes;
    } else key = peerKey;
    if (key.length !== KEY_SIZE) { this.stats.dropped++; return false; }
    const ok = this.transmit(encodeSend(this.regToken, key, payload));
    if (ok) this.stats.sent++; else this.stats.dropped++;
    return ok;
  }

  /**
   * send() without the copy: `payload` has SEND_HEADER_SIZE bytes free before it in its
   * ArrayBuffer that the caller gives up (its own packet memory, never a slice of Node's
   * shared Buffer pool). The SEND header (wire.ts: type, registration token, destination key) is written
   * there and the frame sent is a view of the same memory. A payload without that room
   * is sent by send() (copied).
   */
  sendInPlace(peerKey: Uint8Array, payload: Uint8Array): boolean {
    if (payload.byteOffset < SEND_HEADER_SIZE) return this.send(peerKey, payload);
    if (this._state !== 'registered' || !this.regToken || payload.length > DEFAULT_MAX_PAYLOAD || peerKey.length !== KEY_SIZE) { this.stats.dropped++; return false; }
    const frame = new Uint8Array(payload.buffer, payload.byteOffset - SEND_HEADER_SIZE, SEND_HEADER_SIZE + payload.length);
    frame[0] = FRAME_SEND;
    frame.set(this.regToken, 1);
    frame.set(peerKey, 1 + REG_TOKEN_SIZE);
    const ok = this.transmit(frame);
    if (ok) this.stats.sent++; else this.stats.dropped++;
    return ok;
  }

  /**
   * Ask the relay to forward to us only from these keys (the other parties of our
   * session); undefined or empty = from anyone. At most MAX_ACCEPT_KEYS (32). Sent now if
   * registered, again after every registration, retransmitted until acknowledged.
   */
  setAcceptFrom(keys: ReadonlyArray<PeerKey | string> | undefined): void {
    const list = keys?.map((k) => (k instanceof PeerKey ? k : PeerKey.fromText(k, 'accepted key')));
    if (list && list.length > MAX_ACCEPT_KEYS) throw new RangeError(`a relay accept set holds at most ${MAX_ACCEPT_KEYS} keys`);
    this.acceptKeys = list && list.length > 0 ? list : undefined;
    this.sendAcceptSet();
  }

  /** Has the relay acknowledged the current accept set? (status, tests) */
  get acceptSetAcknowledged(): boolean { return this.acceptPending === undefined; }

  /** Feed one UDP datagram received from the relay's address. Never throws. */
  handleDatagram(buf: Uint8Array): void {
    // a late UDP answer while we fell back to WebSocket: ignore (WS is working)
    if (this._transport !== 'udp') return;
    this.handleFrame(buf, 'udp');
  }

  // ---- receiving ----

  private handleFrame(data: Uint8Array, via: RelayTransport): void {
    try {
      // the hot path: a RECV is checked and delivered without a decoded frame object
      if (data.length > 0 && data[0] === FRAME_RECV) { this.onRecv(data); return; }
      const d = decodeFrame(data);
      if (!d.ok) { this.stats.badFrames++; return; }
      this.onFrame(d.frame, via);
    } catch (err) {
      this.stats.handlerErrors++;
      this.log?.error({ err: String(err) }, 'relay frame handler threw (bug); frame dropped');
    }
  }

  /** A packet from another agent: the length checks of decodeFrame, the sender by its key bytes. */
  private onRecv(frame: Uint8Array): void {
    if (this._state !== 'registered' || dataFrameProblem(frame, DEFAULT_MAX_PAYLOAD, RECV_HEADER_SIZE) !== undefined) { this.stats.badFrames++; return; }
    this.stats.received++;
    const from = this.senderOf(frame);
    this.emit('packet', from.text, frame.subarray(RECV_HEADER_SIZE), from);
  }

  /** The PeerKey of a RECV's source key: a recent sender compared byte by byte (no string or
   *  view made per packet), else through the id cache. */
  private senderOf(frame: Uint8Array): PeerKey {
    const recent = this.recentSenders;
    for (let i = 0; i < recent.length; i++) if (keyAt(frame, 1, recent[i]!.bytes)) return recent[i]!;
    const k = this.keyFromId(Buffer.from(frame.buffer, frame.byteOffset + 1, KEY_SIZE).toString('latin1'));
    if (recent.length >= RECENT_SENDERS) recent.pop();
    recent.unshift(k);
    return k;
  }

  private onFrame(f: RelayFrame, via: RelayTransport): void {
    switch (f.type) {
      case FRAME_PONG:
        if (!this.pingToken || !timingSafeEqual(this.pingToken, f.token)) { this.stats.spoofed++; return; }
        this.pingToken = undefined;
        this.lastHeard = performance.now();
        // the relay knows us at this address: a parallel registration started by a
        // (spoofed) NOT_REGISTERED is not needed
        if (this.attempt?.parallel) this.endAttempt();
        return;
      case FRAME_CHALLENGE:
        this.onChallenge(f.cookie, f.nonce, via);
        return;
      case FRAME_REGISTERED:
        this.onRegistered(f.ikMessage2);
        return;
      case FRAME_NOT_REGISTERED:
        this.onNotRegistered();
        return;
      case FRAME_PEER_GONE:
      case FRAME_RESTARTING:
      case FRAME_KEY_CONFLICT:
      case FRAME_ACCEPT_ACK:
        if (!this.ctl || !this.ctl.open(f)) { this.stats.spoofed++; return; }
        this.lastHeard = performance.now();
        this.onAuthenticated(f);
        return;
      default:
        this.stats.badFrames++; // a frame meant for the relay
    }
  }

  private onAuthenticated(f: Extract<RelayFrame, { type: typeof FRAME_PEER_GONE | typeof FRAME_RESTARTING | typeof FRAME_KEY_CONFLICT | typeof FRAME_ACCEPT_ACK }>): void {
    switch (f.type) {
      case FRAME_PEER_GONE:
        this.emit('peerGone', this.keyFromId(Buffer.from(f.key).toString('latin1')).text);
        return;
      case FRAME_RESTARTING:
        this.log?.info('relay is restarting; re-registering');
        this.reRegister(true);
        return;
      case FRAME_KEY_CONFLICT:
        // the owner tells the operator what to do (the agent: relay-set.ts, at warn)
        this.log?.debug({ key: this.publicKey }, 'the relay sees this key registered from two places that keep evicting each other');
        this.emit('keyConflict');
        return;
      case FRAME_ACCEPT_ACK:
        if (f.acked === this.acceptPending) {
          this.acceptPending = undefined;
          if (this.acceptTimer) clearTimeout(this.acceptTimer);
          this.acceptTimer = undefined;
        }
        return;
    }
  }

  private onNotRegistered(): void {
    this.stats.notRegistered++;
    // unauthenticated: at most a rate-limited parallel registration; the current one stays
    const now = performance.now();
    if (this._state !== 'registered' || this.attempt || now - this.registeredAt < 1000 || now - this.lastParallel < NOT_REGISTERED_EVERY_MS) return;
    this.lastParallel = now;
    this.log?.debug('relay says NOT_REGISTERED; registering again alongside the current registration');
    this.startAttempt(true);
  }

  // ---- registration ----

  private beginRegistration(transport: RelayTransport): void {
    if (this._state === 'closed') return;
    this.clearTimers();
    this.endAttempt();
    this.endRegistration();
    if (transport === 'udp') this.closeWs();
    this._transport = transport;
    this.setState('registering');
    if (transport === 'udp') {
      this.startAttempt(false);
      if (this.mode === 'auto') {
        this.fallbackTimer = this.timer(() => {
          if (this._state === 'registering' && this._transport === 'udp') {
            this.log?.info('no UDP answer from relay; falling back to WebSocket');
            this.beginRegistration('ws');
          }
        }, this.udpFallbackMs);
      }
    } else {
      this.openWs();
    }
  }

  private startAttempt(parallel: boolean): void {
    this.endAttempt();
    this.attempt = { nonce: crypto.getRandomValues(new Uint8Array(NONCE_SIZE)), hs: undefined, parallel, hellos: 0, timer: undefined };
    this.sendHello(this.attempt, parallel ? this.retryMs : this.currentRetry);
  }

  private sendHello(a: Attempt, retry: number): void {
    if (this.attempt !== a) return;
    // a fresh CHALLENGE is needed for every HELLO: forget the handshake of the last one
    a.hs?.destroy();
    a.hs = undefined;
    a.hellos++;
    this.transmit(encodeHello(a.nonce));
    a.timer = this.timer(() => {
      if (this.attempt !== a) return;
      const next = Math.min(retry * 2, 8000);
      if (!a.parallel) this.currentRetry = next;
      this.sendHello(a, next);
    }, retry);
  }

  private onChallenge(cookie: Uint8Array, nonce: Uint8Array, via: RelayTransport): void {
    const a = this.attempt;
    if (!a || a.hs || via !== this._transport) { this.stats.badFrames++; return; }
    if (!timingSafeEqual(a.nonce, nonce)) { this.stats.spoofed++; return; }
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie),
      staticKey: this.keyPair, remoteStaticKey: this.relayKey.bytes,
    });
    a.hs = hs;
    this.transmit(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))));
  }

  private onRegistered(msg2: Uint8Array): void {
    const a = this.attempt;
    if (!a?.hs) { this.stats.badFrames++; return; }
    let payload: Uint8Array;
    try {
      payload = a.hs.readMessage(msg2);
    } catch {
      this.stats.spoofed++; // not from the relay we trust: ignore, keep waiting
      return;
    }
    const p = decodeRegisteredPayload(payload);
    const hs = a.hs;
    a.hs = undefined;
    this.endAttempt();
    if (!p || p.status !== STATUS_REGISTERED) {
      hs.destroy();
      this.log?.warn({ reason: p?.reason }, 'relay rejected our registration');
      this.clearTimers();
      this.endRegistration();
      this.setState('rejected');
      this.retryTimer = this.timer(() => this.beginRegistration(this.mode === 'ws' ? 'ws' : 'udp'), REJECTED_RETRY_MS);
      return;
    }
    this.ctl?.destroy();
    this.ctl = controlKeysOf(hs); // zeroes the handshake
    this.regToken = p.token;
    this.keepaliveMs = this.keepaliveOverride ?? (p.keepaliveS > 0 ? p.keepaliveS * 1000 : 10_000);
    this.clearTimers();
    this.currentRetry = this.retryMs;
    this.stats.registrations++;
    this.registeredAt = performance.now();
    this.lastHeard = this.registeredAt;
    this.acceptSent = false;
    // a renewed registration (parallel, e.g. after a NAT rebinding) is announced too: the
    // agent re-runs STUN and tells its peers when the relay sees it somewhere new
    if (this._state === 'registered') this.emit('state', 'registered', this._transport);
    else this.setState('registered');
    this.scheduleKeepalive();
    this.sendAcceptSet();
  }

  private endAttempt(): void {
    const a = this.attempt;
    if (!a) return;
    this.attempt = undefined;
    if (a.timer) clearTimeout(a.timer);
    a.hs?.destroy();
  }

  private endRegistration(): void {
    this.ctl?.destroy();
    this.ctl = undefined;
    this.regToken?.fill(0);
    this.regToken = undefined;
    this.pingToken = undefined;
  }

  private sendAcceptSet(): void {
    if (this.acceptTimer) clearTimeout(this.acceptTimer);
    this.acceptTimer = undefined;
    this.acceptPending = undefined;
    if (this._state !== 'registered' || !this.ctl) return;
    // a fresh registration accepts from anyone: an empty set only needs sending to clear one
    if (!this.acceptKeys && !this.acceptSent) return;
    const frame = this.ctl.seal(FRAME_ACCEPT_FROM, acceptFromBody((this.acceptKeys ?? []).map((k) => k.bytes)));
    this.acceptSent = true;
    this.acceptPending = this.ctl.lastSealed;
    this.transmit(frame);
    this.acceptTimer = this.timer(() => { if (this.acceptPending !== undefined) this.sendAcceptSet(); }, ACCEPT_RETRY_MS);
  }

  private scheduleKeepalive(): void {
    this.keepaliveTimer = this.timer(() => {
      if (this._state !== 'registered') return;
      const silent = performance.now() - this.lastHeard;
      if (silent > this.keepaliveMs * 2.5) {
        this.log?.info({ silentMs: Math.round(silent) }, 'relay silent; re-registering');
        this.reRegister(false);
        return;
      }
      this.pingToken = crypto.getRandomValues(new Uint8Array(TOKEN_SIZE));
      this.transmit(encodePing(this.pingToken, this.regToken!));
      this.scheduleKeepalive();
    }, this.keepaliveMs);
  }

  private reRegister(relayRestarting: boolean): void {
    this.clearTimers();
    this.endAttempt();
    this.endRegistration();
    // a restarting relay needs a moment; otherwise start at once on the same transport
    const delay = relayRestarting ? 300 + Math.random() * 700 : 0;
    this.setState('registering');
    const again = (): void => {
      if (this._state !== 'registering') return;
      // on WebSocket after a restart the socket is gone: reconnect; auto retries UDP first
      this.beginRegistration(this.mode === 'ws' ? 'ws' : this.mode === 'udp' ? 'udp' : relayRestarting ? 'udp' : this._transport ?? 'udp');
    };
    if (delay === 0) again(); else this.retryTimer = this.timer(again, delay);
  }

  // ---- WebSocket ----

  private openWs(): void {
    this.closeWs();
    const ws = new WebSocket(this.wsUrl!, { perMessageDeflate: false, maxPayload: MAX_FRAME_SIZE, agent: this.wsAgent, ca: this.wsCa });
    ws.binaryType = 'nodebuffer';
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.currentRetry = this.retryMs;
      this.startAttempt(false);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.ws !== ws || !isBinary) return;
      this.handleFrame(data, 'ws');
    });
    ws.on('error', (err) => { this.log?.debug({ err: err.message }, 'relay WebSocket error'); });
    ws.on('close', () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this._state === 'closed' || this._state === 'rejected') return;
      // reconnect with backoff; auto mode gives UDP another chance first
      this.clearTimers();
      this.endAttempt();
      this.endRegistration();
      this.setState('registering');
      const delay = this.currentRetry;
      this.currentRetry = Math.min(this.currentRetry * 2, 8000);
      this.retryTimer = this.timer(() => this.beginRegistration(this.mode === 'auto' ? 'udp' : 'ws'), delay);
    });
  }

  /** Drop our WebSocket; `flush`: by a close handshake, which sends what is buffered first
   *  (terminate() would discard a LEAVE still in the buffer), torn down if it takes too long. */
  private closeWs(flush = false): void {
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners('message');
      ws.on('error', () => {});
      if (flush) {
        try { ws.close(1000, 'leaving'); } catch { /* already closing */ }
        setTimeout(() => ws.terminate(), WS_LEAVE_CLOSE_MS).unref();
        return;
      }
      try { ws.terminate(); } catch { /* already closed */ }
    }
  }

  // ---- plumbing ----

  private transmit(frame: Uint8Array): boolean {
    if (this._transport === 'udp') {
      try { this.sendUdpFn!(frame); return true; } catch { return false; }
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > this.maxWsBuffered) return false;
    ws.send(frame, { binary: true });
    return true;
  }

  private keyFromId(id: string): PeerKey {
    let k = this.keyById.get(id);
    if (!k) {
      if (this.keyById.size >= KEY_CACHE) this.keyById.clear();
      k = PeerKey.fromId(id);
      this.keyById.set(id, k);
    }
    return k;
  }

  private keyFromText(text: string): PeerKey | undefined {
    let k = this.keyByText.get(text);
    if (!k) {
      try { k = PeerKey.fromText(text); } catch { return undefined; }
      if (this.keyByText.size >= KEY_CACHE) this.keyByText.clear();
      this.keyByText.set(text, k);
    }
    return k;
  }

  private setState(s: RelayClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.log?.debug({ state: s, transport: this._transport }, 'relay client state');
    this.emit('state', s, this._transport);
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.fallbackTimer, this.keepaliveTimer, this.acceptTimer]) if (t) clearTimeout(t);
    this.retryTimer = this.fallbackTimer = this.keepaliveTimer = this.acceptTimer = undefined;
  }
}
