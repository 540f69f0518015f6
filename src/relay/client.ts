// RelayClient: one agent's connection to one relay (docs/protocol/relay.md).
//
// It owns no UDP socket: the agent demultiplexes its one shared socket by first byte
// and passes every 0x20-0x3F datagram from the relay's address to handleDatagram();
// the client answers through the sendUdp function it was given. For networks that
// block UDP it opens its own WebSocket to ws://host:httpPort/relay and speaks the same
// frames there. Transport 'auto' tries UDP first and falls back to WebSocket when the
// relay has not answered over UDP within udpFallbackMs.
//
// Registration: HELLO -> CHALLENGE(cookie) -> REGISTER(cookie, IK msg 1) ->
// REGISTERED(IK msg 2). The IK handshake proves we hold our static key and that the
// relay holds its key; its result is not used to encrypt anything afterwards (the
// payloads we forward are already end-to-end encrypted by the agents).
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { HandshakeState, type KeyPair } from './handshake.js';
import {
  FRAME_CHALLENGE, FRAME_NOT_REGISTERED, FRAME_PEER_GONE, FRAME_PING, FRAME_PONG,
  FRAME_RECV, FRAME_REGISTERED, FRAME_REJECTED, FRAME_RESTARTING, FRAME_SEND, CHALLENGE_SIZE,
  COOKIE_SIZE, KEY_SIZE, NOISE_PROTOCOL, PEER_GONE_SIZE, PING_SIZE, SEND_HEADER_SIZE,
  decodeRegisteredPayload, encodeHello, encodePingLike, encodeRegister, encodeSend,
  registrationPrologue, DEFAULT_MAX_PAYLOAD,
} from './wire.js';
import { KeyBytesCache, KeyTextCache, keyFromBase64, keyToBase64 } from './keycache.js';

export type RelayTransport = 'udp' | 'ws';
export type RelayTransportMode = RelayTransport | 'auto';
/** idle: not started; registering: handshake in flight; registered: can send;
 *  rejected: the relay refused our key (retrying slowly); closed: close() was called */
export type RelayClientState = 'idle' | 'registering' | 'registered' | 'rejected' | 'closed';

export interface RelayClientOptions {
  /** relay public key, 32 bytes or base64 */
  relayKey: Uint8Array | string;
  /** this agent's static X25519 key pair */
  keyPair: KeyPair;
  /** default: 'auto' when both sendUdp and wsUrl are given, else the one available */
  transport?: RelayTransportMode;
  /** sends one datagram to the relay's UDP address over the agent's shared socket */
  sendUdp?: (frame: Uint8Array) => void;
  /** e.g. ws://relay.example.org:8080/relay (see relayWsUrl) */
  wsUrl?: string;
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
  /** a packet another agent sent us through the relay; payload is a view, copy to keep */
  packet: [fromKey: string, payload: Uint8Array];
  /** the relay says this key is not registered (our SEND to it was dropped) */
  peerGone: [key: string];
  state: [state: RelayClientState, transport: RelayTransport | undefined];
}

export function relayWsUrl(host: string, httpPort: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `ws://${h}:${httpPort}/relay`;
}

export class RelayClient extends EventEmitter<RelayClientEvents> {
  private readonly relayKey: Uint8Array;
  private readonly keyPair: KeyPair;
  private readonly mode: RelayTransportMode;
  private readonly sendUdpFn: ((f: Uint8Array) => void) | undefined;
  private readonly wsUrl: string | undefined;
  private readonly udpFallbackMs: number;
  private readonly retryMs: number;
  private readonly keepaliveOverride: number | undefined;
  private readonly maxWsBuffered: number;
  private readonly log: Logger | undefined;
  private readonly keyBytes = new KeyBytesCache();
  private readonly keyText = new KeyTextCache();

  private _state: RelayClientState = 'idle';
  private _transport: RelayTransport | undefined;
  private ws: WebSocket | undefined;
  private hs: HandshakeState | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private fallbackTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private currentRetry: number;
  private keepaliveMs = 10_000;
  private lastHeard = 0;
  private registeredAt = 0;
  /** counters for status displays and tests */
  readonly stats = { sent: 0, received: 0, dropped: 0, registrations: 0, badFrames: 0 };

  constructor(opts: RelayClientOptions) {
    super();
    this.relayKey = typeof opts.relayKey === 'string' ? keyFromBase64(opts.relayKey, 'relay key') : opts.relayKey;
    if (this.relayKey.length !== KEY_SIZE) throw new Error('relay key must be 32 bytes');
    this.keyPair = opts.keyPair;
    this.sendUdpFn = opts.sendUdp;
    this.wsUrl = opts.wsUrl;
    this.mode = opts.transport ?? (opts.sendUdp && opts.wsUrl ? 'auto' : opts.sendUdp ? 'udp' : 'ws');
    if (this.mode !== 'ws' && !this.sendUdpFn) throw new Error(`relay transport ${this.mode} needs sendUdp`);
    if (this.mode !== 'udp' && !this.wsUrl) throw new Error(`relay transport ${this.mode} needs wsUrl`);
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
  get publicKey(): string { return keyToBase64(this.keyPair.publicKey); }

  /** Begin registering (no-op if already started). */
  start(): void {
    if (this._state !== 'idle') return;
    this.beginRegistration(this.mode === 'ws' ? 'ws' : 'udp');
  }

  /** Stop: close the WebSocket, clear timers. Emits state 'closed'. */
  close(): void {
    if (this._state === 'closed') return;
    this.clearTimers();
    this.closeWs();
    this.setState('closed');
  }

  /**
   * Send an opaque packet to another agent's key (base64 or 32 bytes). Returns false
   * (and counts a drop) when not registered or the WebSocket is backed up.
   */
  send(peerKey: string | Uint8Array, payload: Uint8Array): boolean {
    if (this._state !== 'registered' || payload.length > DEFAULT_MAX_PAYLOAD) { this.stats.dropped++; return false; }
    let key: Uint8Array;
    try { key = typeof peerKey === 'string' ? this.keyBytes.get(peerKey) : peerKey; } catch { this.stats.dropped++; return false; }
    if (key.length !== KEY_SIZE) { this.stats.dropped++; return false; }
    const ok = this.transmit(encodeSend(key, payload));
    if (ok) this.stats.sent++; else this.stats.dropped++;
    return ok;
  }

  /**
   * send() without the copy: `payload` has SEND_HEADER_SIZE bytes free before it in its
   * ArrayBuffer that the caller gives up (its own packet memory, never a slice of Node's
   * shared Buffer pool). The SEND header (wire.ts: type, destination key) is written
   * there and the frame sent is a view of the same memory. A payload without that room
   * is sent by send() (copied).
   */
  sendInPlace(peerKey: Uint8Array, payload: Uint8Array): boolean {
    if (payload.byteOffset < SEND_HEADER_SIZE) return this.send(peerKey, payload);
    if (this._state !== 'registered' || payload.length > DEFAULT_MAX_PAYLOAD || peerKey.length !== KEY_SIZE) { this.stats.dropped++; return false; }
    const frame = new Uint8Array(payload.buffer, payload.byteOffset - SEND_HEADER_SIZE, SEND_HEADER_SIZE + payload.length);
    frame[0] = FRAME_SEND;
    frame.set(peerKey, 1);
    const ok = this.transmit(frame);
    if (ok) this.stats.sent++; else this.stats.dropped++;
    return ok;
  }

  /** Feed one UDP datagram received from the relay's address. Never throws. */
  handleDatagram(buf: Uint8Array): void {
    if (this._transport !== 'udp') {
      // a late UDP answer while we fell back to WebSocket: ignore (WS is working)
      return;
    }
    this.handleFrame(buf, 'udp');
  }

  // ---- internals ----

  private handleFrame(data: Uint8Array, via: RelayTransport): void {
    try {
      this.handleFrameUnsafe(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), via);
    } catch (err) {
      this.stats.badFrames++;
      this.log?.debug({ err }, 'bad relay frame');
    }
  }

  private handleFrameUnsafe(buf: Buffer, via: RelayTransport): void {
    if (buf.length === 0) return;
    this.lastHeard = performance.now();
    switch (buf[0]) {
      case FRAME_RECV:
        if (buf.length < SEND_HEADER_SIZE || this._state !== 'registered') { this.stats.badFrames++; return; }
        this.stats.received++;
        this.emit('packet', this.keyText.get(buf, 1), buf.subarray(SEND_HEADER_SIZE));
        return;
      case FRAME_PONG:
        return;
      case FRAME_PING:
        if (buf.length === PING_SIZE) this.transmit(encodePingLike(FRAME_PONG, buf.subarray(1)));
        return;
      case FRAME_CHALLENGE:
        if (buf.length !== CHALLENGE_SIZE || this._state !== 'registering' || via !== this._transport) { this.stats.badFrames++; return; }
        this.onChallenge(buf.subarray(4, 4 + COOKIE_SIZE));
        return;
      case FRAME_REGISTERED:
        if (this._state !== 'registering' || !this.hs) { this.stats.badFrames++; return; }
        this.onRegistered(buf.subarray(4));
        return;
      case FRAME_PEER_GONE:
        if (buf.length !== PEER_GONE_SIZE) { this.stats.badFrames++; return; }
        this.emit('peerGone', this.keyText.get(buf, 1));
        return;
      case FRAME_RESTARTING:
        this.log?.info('relay is restarting; re-registering');
        if (this._state === 'registered' || this._state === 'registering') this.reRegister(true);
        return;
      case FRAME_NOT_REGISTERED:
        if (this._state === 'registered' && performance.now() - this.registeredAt > 1000) this.reRegister(false);
        return;
      case FRAME_REJECTED:
        if (this._state !== 'registering') return;
        this.log?.warn({ reason: buf[1] }, 'relay rejected our registration');
        this.clearTimers();
        this.setState('rejected');
        this.retryTimer = this.timer(() => this.beginRegistration(this.mode === 'ws' ? 'ws' : 'udp'), 30_000);
        return;
      default:
        this.stats.badFrames++;
    }
  }

  private onChallenge(cookie: Uint8Array): void {
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie),
      staticKey: this.keyPair, remoteStaticKey: this.relayKey,
    });
    const msg1 = hs.writeMessage(new Uint8Array(0));
    this.hs = hs;
    this.transmit(encodeRegister(cookie, msg1));
  }

  private onRegistered(msg2: Uint8Array): void {
    let payload: Uint8Array;
    try {
      payload = this.hs!.readMessage(msg2);
    } catch {
      this.stats.badFrames++; // not from the relay we trust: ignore, keep waiting
      return;
    }
    this.hs = undefined;
    const p = decodeRegisteredPayload(payload);
    const suggested = p && p.keepaliveS > 0 ? p.keepaliveS * 1000 : 10_000;
    this.keepaliveMs = this.keepaliveOverride ?? suggested;
    this.clearTimers();
    this.currentRetry = this.retryMs;
    this.stats.registrations++;
    this.registeredAt = performance.now();
    this.lastHeard = this.registeredAt;
    this.setState('registered');
    this.scheduleKeepalive();
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
      this.transmit(encodePingLike(FRAME_PING, crypto.getRandomValues(new Uint8Array(8))));
      this.scheduleKeepalive();
    }, this.keepaliveMs);
  }

  private reRegister(relayRestarting: boolean): void {
    this.clearTimers();
    this.hs = undefined;
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

  private beginRegistration(transport: RelayTransport): void {
    if (this._state === 'closed') return;
    this.clearTimers();
    this.hs = undefined;
    if (transport === 'udp') this.closeWs();
    this._transport = transport;
    this.setState('registering');
    if (transport === 'udp') {
      this.sendHelloWithRetry();
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

  private sendHelloWithRetry(): void {
    this.transmit(encodeHello());
    this.retryTimer = this.timer(() => {
      if (this._state !== 'registering') return;
      this.currentRetry = Math.min(this.currentRetry * 2, 8000);
      this.hs = undefined;
      this.sendHelloWithRetry();
    }, this.currentRetry);
  }

  private openWs(): void {
    this.closeWs();
    const ws = new WebSocket(this.wsUrl!, { perMessageDeflate: false, maxPayload: 64 * 1024 });
    ws.binaryType = 'nodebuffer';
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.currentRetry = this.retryMs;
      this.transmit(encodeHello());
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
      this.setState('registering');
      const delay = this.currentRetry;
      this.currentRetry = Math.min(this.currentRetry * 2, 8000);
      this.retryTimer = this.timer(() => this.beginRegistration(this.mode === 'auto' ? 'udp' : 'ws'), delay);
    });
  }

  private closeWs(): void {
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners('message');
      ws.on('error', () => {});
      try { ws.terminate(); } catch { /* already closed */ }
    }
  }

  private transmit(frame: Uint8Array): boolean {
    if (this._transport === 'udp') {
      try { this.sendUdpFn!(frame); return true; } catch { return false; }
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > this.maxWsBuffered) return false;
    ws.send(frame, { binary: true });
    return true;
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
    for (const t of [this.retryTimer, this.fallbackTimer, this.keepaliveTimer]) if (t) clearTimeout(t);
    this.retryTimer = this.fallbackTimer = this.keepaliveTimer = undefined;
  }
}
