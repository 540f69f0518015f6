// The agent↔agent session layer: turns Noise IK handshakes and transport messages into an
// authenticated, encrypted datagram channel per peer, the way WireGuard does for UDP.
// Sans-I/O: datagrams come in through receive(), go out through the `transmit` callback;
// time comes from `clock` (monotonic ms) and timers are exposed as nextDeadline()/tick().
//
// Endpoints are explicit and opaque: `E` is whatever the caller uses to say where a
// datagram came from or goes to (an address, a relay, ...). receive(datagram, from) hands
// `from` on to deliver() and sends the handshake reply to it; send(peer, plaintext, to)
// forces an endpoint (probes); every other transmit gets `null`, "the caller's choice"
// (its active path). Peers are PeerKeys, the session layer keeps no other key form.
//
// Per peer there are up to three sets of keys (WireGuard's keypair slots):
//   current  — used to send; the newest confirmed session
//   previous — the one `current` replaced; still accepted so in-flight packets land
//   next     — we answered the peer's initiation; we may not SEND with it until the peer
//              proves it completed the handshake by sending us a transport message
//              (otherwise a replayed initiation could make us send to nobody)
// and at most one pending initiation of our own.
//
// Simultaneous initiation (both sides send an initiation before either sees the other's):
// the side with the bytewise smaller static public key keeps its own initiation and ignores
// the peer's; the other side abandons its own and answers. Both end on ONE session.
//
// Initiations are screened before any Diffie-Hellman (initiation-guard.ts): mac1, exact
// copies of recent initiations, and under load a cookie for the source (WireGuard's mac2)
// and per-source and global budgets. The static-static DH with each peer is computed once,
// so a replayed initiation that gets past the screen costs one DH before its timestamp is
// refused. Every handshake state is destroyed (zeroed) when it completes or fails.
//
// Transport messages are opened in place: receive() decrypts inside the datagram's own
// memory, and the plaintext handed to deliver() is a view of it. send() copies the
// plaintext once into the message; sendInPlace() seals a caller's view with headroom where
// it lies (session-keys.ts).
import { HandshakeState, NoiseError, PROTOCOL_NAME, dh, type KeyPair } from '../noise/index.js';
import { PeerKey } from '../common/peer-key.js';
import {
  HANDSHAKE_RETRY_FIRST_MS, HANDSHAKE_RETRY_MAX_MS, MAX_QUEUED_PACKETS, MIN_INITIATION_INTERVAL_MS,
  PROLOGUE, REJECT_AFTER_MESSAGES, REJECT_AFTER_MS, REKEY_AFTER_MESSAGES, REKEY_AFTER_MS,
  REKEY_ATTEMPT_MS, RESPONDER_REKEY_AFTER_MS,
} from './constants.js';
import { CookieJar } from './cookie.js';
import { DEFAULT_INITIATION_LIMITS, InitiationGuard, type InitiationLimits } from './initiation-guard.js';
import { computeMac, mac1Key, verifyMac } from './mac.js';
import { SessionKeys } from './session-keys.js';
import { MonotonicTai64n, compareTimestamps } from './timestamp.js';
import {
  INITIATION_LEN, MAC_LEN, MSG_TRANSPORT, RESPONSE_LEN, TIMESTAMP_LEN, decodeSessionMessage, encodeInitiation,
  encodeResponse, transportReceiverIndex, type CookieReply, type Initiation, type Response,
} from './wire.js';

export interface SessionManagerOptions<E> {
  staticKey: KeyPair;
  /** the only static keys we talk to (the other parties of the session file) */
  peers: readonly PeerKey[];
  /**
   * Put this datagram on the wire towards `peer`: to `to` when the session layer names the
   * endpoint (a handshake reply goes to where its initiation came from; a forced send), or
   * by the caller's own choice (its active path) when `to` is null. Returning `false` says
   * the datagram did not go out (no route to the peer yet, e.g. before the first relay
   * registration): an initiation that never reached the wire does not count against the
   * 20 ms initiation spacing, so the next connect() sends one at once. Any other return
   * value (or none) means it went out.
   */
  transmit: (peer: PeerKey, packet: Uint8Array, to: E | null) => unknown;
  /** an authenticated, non-empty plaintext from `peer` that arrived from `from` */
  deliver: (peer: PeerKey, plaintext: Uint8Array, from: E) => void;
  /** monotonic milliseconds (default performance.now) */
  clock?: () => number;
  /** wall-clock milliseconds for initiation timestamps (default Date.now) */
  wallClock?: () => number;
  /** random 32-bit values for session indices (default crypto-strong) */
  randomIndex?: () => number;
  onEvent?: (e: SessionEvent) => void;
  /**
   * Where datagrams come from, for the cookie mechanism under load (docs/protocol/session.md):
   * `bytesOf(from)` names the source — a direct datagram's address and port, a relayed one's
   * relay-authenticated sender key — and `reply(packet, to)` sends a cookie reply, which
   * answers no peer yet, back to that endpoint. Without it no cookie is ever asked for, and
   * under load the global budget alone bounds the handshake work.
   */
  source?: SourceNaming<E>;
  /** overrides of the pre-DH limits (initiation-guard.ts; defaults in constants.ts) */
  initiationLimits?: Partial<InitiationLimits>;
}

export interface SourceNaming<E> {
  bytesOf(from: E): Uint8Array;
  reply(packet: Uint8Array, to: E): void;
}

export type SessionEvent =
  | { type: 'established'; peer: PeerKey; initiator: boolean }
  | { type: 'handshakeTimeout'; peer: PeerKey; droppedPackets: number };

export type ReceiveResult =
  | { kind: 'data'; peer: PeerKey; keepalive: boolean }
  /** `answered`: it was the peer's initiation and we answered it (to `from`) */
  | { kind: 'handshake'; peer: PeerKey; answered: boolean }
  | { kind: 'dropped'; reason: string; peer?: PeerKey };

export interface PeerSessionInfo {
  established: boolean;
  handshakePending: boolean;
  /** ms since the current session's handshake completed */
  handshakeAgeMs?: number;
  lastError?: string;
  queued: number;
}

interface PendingInitiation {
  hs: HandshakeState;
  /** the initiation as sent, for an immediate repeat */
  packet: Uint8Array;
  localIndex: number;
  sentAt: number;
}

interface PeerState {
  key: PeerKey;
  /** mac1 key for messages WE send to this peer (derived from its public key) */
  sendMac1Key: Uint8Array;
  /** DH(our static, its static): the same for every handshake with this peer, so computed once */
  staticStatic: Uint8Array;
  /** the cookie this peer gave us when it was under load */
  cookies: CookieJar;
  /** whether we keep our initiation when both sides initiate at once */
  winsSimultaneous: boolean;
  current?: SessionKeys;
  previous?: SessionKeys;
  next?: SessionKeys;
  pending?: PendingInitiation;
  /** when the current attempt (series of retries) began; undefined when none */
  attemptStartedAt?: number;
  retryDelayMs: number;
  /** an initiation wanted but postponed by the 20 ms limit */
  deferredInitiationAt?: number;
  lastInitiationSentAt: number;
  lastInitiationAcceptedAt: number;
  lastTimestamp?: Uint8Array;
  queue: Uint8Array[];
  lastError?: string;
}

interface IndexEntry {
  peer: PeerState;
  /** undefined while the index names our pending initiation */
  keys?: SessionKeys;
}

const EMPTY = new Uint8Array(0);
/** where mac1 and mac2 sit in an initiation, and mac1 in a response (wire.ts) */
const MAC1_AT = INITIATION_LEN - 2 * MAC_LEN;
const MAC2_AT = INITIATION_LEN - MAC_LEN;
const RESPONSE_MAC1_AT = RESPONSE_LEN - 2 * MAC_LEN;

export class SessionManager<E> {
  /** by PeerKey.id */
  private readonly peers = new Map<string, PeerState>();
  private readonly indices = new Map<number, IndexEntry>();
  private readonly receiveMac1Key: Uint8Array;
  private readonly timestamps: MonotonicTai64n;
  private readonly clock: () => number;
  private readonly randomIndex: () => number;
  private readonly guard: InitiationGuard;
  private closed = false;
  /** drops by reason (the label of the agent's drop counter) */
  readonly drops = new Map<string, number>();
  readonly counters = { sent: 0, received: 0, initiationsSent: 0, handshakesCompleted: 0 };

  constructor(private readonly opts: SessionManagerOptions<E>) {
    this.clock = opts.clock ?? (() => performance.now());
    this.randomIndex = opts.randomIndex ?? defaultRandomIndex;
    this.timestamps = new MonotonicTai64n(opts.wallClock ?? Date.now);
    this.receiveMac1Key = mac1Key(opts.staticKey.publicKey);
    this.guard = new InitiationGuard(opts.staticKey.publicKey, this.clock(), { ...DEFAULT_INITIATION_LIMITS, ...opts.initiationLimits });
    const own = PeerKey.fromBytes(opts.staticKey.publicKey);
    for (const key of opts.peers) {
      if (key.equals(own)) throw new RangeError('own key given as a peer');
      this.peers.set(key.id, {
        key, sendMac1Key: mac1Key(key.bytes),
        staticStatic: dh(opts.staticKey.privateKey, key.bytes),
        cookies: new CookieJar(key.bytes),
        winsSimultaneous: own.compare(key) < 0,
        retryDelayMs: HANDSHAKE_RETRY_FIRST_MS,
        lastInitiationSentAt: -Infinity, lastInitiationAcceptedAt: -Infinity, queue: [],
      });
    }
  }

  // ---------------------------------------------------------------- sending

  /**
   * Encrypts and transmits `plaintext` to `peer` (empty = keepalive), to the endpoint `to`
   * if given, else by the caller's choice (transmit gets null). Without a usable session a
   * plaintext without `to` is queued (bounded, oldest dropped) and a handshake starts; one
   * with `to` is not (it is meant for that endpoint now, e.g. a probe, and a queued packet
   * would later go elsewhere). Returns whether it went out now.
   */
  send(peer: PeerKey, plaintext: Uint8Array, to?: E): boolean {
    if (this.closed) return false;
    const p = this.peerOf(peer);
    const now = this.clock();
    const s = this.sendableSession(p, now);
    if (s) {
      this.sealAndTransmit(p, s, plaintext, to ?? null);
      this.rekeyIfDue(p, s);
      return true;
    }
    if (to !== undefined) return false;
    if (p.queue.length >= MAX_QUEUED_PACKETS) {
      p.queue.shift();
      this.drop('queue_full');
    }
    p.queue.push(plaintext);
    // a fresh unconfirmed responder session will be confirmed by the initiator's first
    // packet within a round trip: wait for that instead of racing it with a new handshake
    const waitForConfirmation = p.next && now - p.next.createdAt < HANDSHAKE_RETRY_FIRST_MS;
    if (!p.pending && !waitForConfirmation) this.initiate(p, now);
    return false;
  }

  /**
   * send() without the copy: `plaintext` is a view with SESSION_HEADROOM bytes before it
   * and SESSION_TAILROOM after it (session-keys.ts) that the caller gives up — the message
   * is built around it and the plaintext is encrypted where it lies, so the caller must
   * not touch that memory until the transmitted packet has been sent. When there is no
   * session it is copied into the queue (or, with `to`, dropped) exactly as send() does.
   */
  sendInPlace(peer: PeerKey, plaintext: Uint8Array, to?: E): boolean {
    if (this.closed) return false;
    const p = this.peerOf(peer);
    const s = this.sendableSession(p, this.clock());
    if (!s) return this.send(peer, new Uint8Array(plaintext), to);
    this.counters.sent++;
    this.opts.transmit(p.key, s.sealInPlace(plaintext), to ?? null);
    this.rekeyIfDue(p, s);
    return true;
  }

  /**
   * Starts a handshake now (subject to the 20 ms limit) unless one is in flight; with
   * `restart`, an unanswered one is replaced by a fresh one at once (e.g. the path to the
   * peer just became usable, so waiting for the retry timer would only add latency).
   */
  connect(peer: PeerKey, restart = false): void {
    const p = this.peerOf(peer);
    if (this.closed || (p.pending && !restart)) return;
    this.initiate(p, this.clock());
  }

  private sendableSession(p: PeerState, now: number): SessionKeys | undefined {
    const s = p.current;
    if (!s || now - s.createdAt >= REJECT_AFTER_MS || s.messagesSent >= REJECT_AFTER_MESSAGES) return undefined;
    return s;
  }

  private rekeyIfDue(p: PeerState, s: SessionKeys): void {
    if (p.pending || p.deferredInitiationAt) return;
    const now = this.clock();
    if (this.needsRekey(s, now)) this.initiate(p, now);
  }

  private needsRekey(s: SessionKeys, now: number): boolean {
    if (s.messagesSent >= REKEY_AFTER_MESSAGES) return true;
    const age = now - s.createdAt;
    return s.initiator ? age >= REKEY_AFTER_MS : age >= RESPONDER_REKEY_AFTER_MS;
  }

  private sealAndTransmit(p: PeerState, s: SessionKeys, plaintext: Uint8Array, to: E | null): void {
    const packet = s.seal(plaintext);
    this.counters.sent++;
    this.opts.transmit(p.key, packet, to);
  }

  private initiate(p: PeerState, now: number): void {
    const earliest = p.lastInitiationSentAt + MIN_INITIATION_INTERVAL_MS;
    if (now < earliest) {
      p.deferredInitiationAt = earliest;
      return;
    }
    p.deferredInitiationAt = undefined;
    this.abandonPending(p);
    const hs = new HandshakeState({
      protocolName: PROTOCOL_NAME, initiator: true, prologue: PROLOGUE,
      staticKey: this.opts.staticKey, remoteStaticKey: p.key.bytes, staticDh: () => p.staticStatic,
    });
    let noise: Uint8Array;
    try {
      noise = hs.writeMessage(this.timestamps.next());
    } catch (err) {
      hs.destroy();
      throw err;
    }
    const localIndex = this.allocateIndex({ peer: p });
    const zeroMac = new Uint8Array(MAC_LEN);
    const packet = encodeInitiation({ senderIndex: localIndex, noise, mac1: zeroMac, mac2: zeroMac });
    const mac1 = computeMac(p.sendMac1Key, packet.subarray(0, MAC1_AT));
    packet.set(mac1, MAC1_AT);
    p.cookies.sent(mac1);
    packet.set(p.cookies.mac2(packet.subarray(0, MAC2_AT), now), MAC2_AT);
    p.pending = { hs, packet, localIndex, sentAt: now };
    p.attemptStartedAt ??= now;
    const spacedFrom = p.lastInitiationSentAt;
    p.lastInitiationSentAt = now;
    if (this.opts.transmit(p.key, packet, null) === false) {
      // only an initiation on the wire is spaced: this one keeps its retry timer, and
      // connect() replaces it at once when a route appears (the first relay registration)
      p.lastInitiationSentAt = spacedFrom;
      return;
    }
    this.counters.initiationsSent++;
  }

  private abandonPending(p: PeerState): void {
    if (!p.pending) return;
    this.indices.delete(p.pending.localIndex);
    p.pending.hs.destroy();
    p.pending = undefined;
  }

  // ---------------------------------------------------------------- receiving

  /**
   * One datagram of type 0x10–0x1F that arrived from `from`. Never throws on bad input:
   * drops and counts it.
   */
  receive(datagram: Uint8Array, from: E): ReceiveResult {
    if (this.closed) return this.drop('closed');
    // a transport message (every data packet) is checked without making a decoded object
    if (datagram[0] === MSG_TRANSPORT) return this.onTransport(datagram, from);
    const d = decodeSessionMessage(datagram);
    switch (d.type) {
      case 'invalid': return this.drop(d.reason);
      case 'initiation': return this.onInitiation(d.msg, datagram, from);
      case 'response': return this.onResponse(d.msg, datagram);
      case 'cookie': return this.onCookieReply(d.msg, from);
      case 'transport': return this.onTransport(datagram, from); // routed above already
    }
  }

  /**
   * In this order, cheapest first (docs/protocol/session.md): an exact copy of a recent
   * initiation (a lookup) → mac1 (a hash) → the guard (no DH: cookies under load, budgets)
   * → Noise message 1: es (1 DH), the static key must be a party (refused before the ss
   * DH, which is cached anyway) → timestamp → 20 ms per peer → simultaneous-initiation
   * rule → answer (2 more DH).
   */
  private onInitiation(msg: Initiation, raw: Uint8Array, from: E): ReceiveResult {
    if (this.guard.isCopy(msg)) return this.drop('duplicate_initiation');
    if (!verifyMac(this.receiveMac1Key, raw.subarray(0, MAC1_AT), msg.mac1)) return this.drop('bad_mac1');
    const now = this.clock();
    const source = this.opts.source;
    const admission = this.guard.admit(raw, msg, source?.bytesOf(from), now);
    if (!admission.admit) {
      if (admission.cookieReply) source!.reply(admission.cookieReply, from);
      return this.drop(admission.reason);
    }
    let stranger = false;
    const hs = new HandshakeState({
      protocolName: PROTOCOL_NAME, initiator: false, prologue: PROLOGUE, staticKey: this.opts.staticKey,
      staticDh: (rs) => {
        const known = this.peerById(rs);
        stranger = !known;
        return known?.staticStatic;
      },
    });
    let timestamp: Uint8Array;
    try {
      timestamp = hs.readMessage(msg.noise);
    } catch (err) {
      hs.destroy();
      if (err instanceof NoiseError) return this.drop(stranger ? 'unknown_peer' : 'handshake_failed');
      throw err;
    }
    this.guard.remember(msg);
    // the read succeeded, so staticDh was asked about this key and found its peer
    const p = this.peerById(hs.remoteStaticKey()!)!;
    const refuse = (reason: string): ReceiveResult => {
      hs.destroy();
      return this.drop(reason, p.key);
    };
    if (timestamp.length !== TIMESTAMP_LEN) return refuse('bad_timestamp');
    if (p.lastTimestamp && compareTimestamps(timestamp, p.lastTimestamp) <= 0) return refuse('replayed_initiation');
    if (now - p.lastInitiationAcceptedAt < MIN_INITIATION_INTERVAL_MS) return refuse('initiation_flood');
    if (p.pending && p.winsSimultaneous) {
      // The peer is alive and reachable now, but our own initiation may have been lost
      // (e.g. sent before the peer had registered with the relay): rather than leave both
      // sides waiting for the retry timer, repeat it at once.
      const result = refuse('simultaneous_initiation_lost');
      // re-send the same bytes: if the peer already has them it drops the exact copy (no DH);
      // if they were lost, the handshake completes now, with no extra handshake either way;
      // it goes where the peer's initiation came from: the peer was just heard there
      this.opts.transmit(p.key, p.pending.packet, from);
      return result;
    }
    // we answer: if we had an initiation in flight, the peer's takes its place
    if (p.pending) {
      this.abandonPending(p);
      p.attemptStartedAt = undefined;
      p.retryDelayMs = HANDSHAKE_RETRY_FIRST_MS;
    }
    p.lastTimestamp = new Uint8Array(timestamp);
    p.lastInitiationAcceptedAt = now;

    const noise = hs.writeMessage(EMPTY);
    const { send, receive } = hs.split();
    hs.destroy();
    const entry: IndexEntry = { peer: p };
    const localIndex = this.allocateIndex(entry);
    entry.keys = new SessionKeys(send, receive, localIndex, msg.senderIndex, false, now);
    this.retire(p.next);
    p.next = entry.keys;

    const zeroMac = new Uint8Array(MAC_LEN);
    const packet = encodeResponse({ senderIndex: localIndex, receiverIndex: msg.senderIndex, noise, mac1: zeroMac, mac2: zeroMac });
    packet.set(computeMac(p.sendMac1Key, packet.subarray(0, RESPONSE_MAC1_AT)), RESPONSE_MAC1_AT);
    // back to where the initiation came from: the initiator may not (or no longer) be
    // reachable by the caller's active path, e.g. it restarted on a new port
    this.opts.transmit(p.key, packet, from);
    return { kind: 'handshake', peer: p.key, answered: true };
  }

  private onResponse(msg: Response, raw: Uint8Array): ReceiveResult {
    if (!verifyMac(this.receiveMac1Key, raw.subarray(0, RESPONSE_MAC1_AT), msg.mac1)) return this.drop('bad_mac1');
    if (!isZero(msg.mac2)) return this.drop('bad_mac2');
    const entry = this.indices.get(msg.receiverIndex);
    const p = entry?.peer;
    if (!entry || entry.keys || !p?.pending || p.pending.localIndex !== msg.receiverIndex) return this.drop('unknown_index');
    const pending = p.pending;
    try {
      pending.hs.readMessage(msg.noise); // rolled back on failure: the genuine response may still come
    } catch (err) {
      if (err instanceof NoiseError) return this.drop('handshake_failed', p.key);
      throw err;
    }
    const now = this.clock();
    const { send, receive } = pending.hs.split();
    pending.hs.destroy();
    p.pending = undefined;
    p.attemptStartedAt = undefined;
    p.retryDelayMs = HANDSHAKE_RETRY_FIRST_MS;
    p.lastError = undefined;
    entry.keys = new SessionKeys(send, receive, pending.localIndex, msg.senderIndex, true, now);
    this.promote(p, entry.keys);
    this.counters.handshakesCompleted++;
    this.opts.onEvent?.({ type: 'established', peer: p.key, initiator: true });
    // the responder may not send until it hears from us on the new session: if nothing is
    // queued, confirm with an empty transport message (a keepalive)
    if (p.queue.length === 0) this.sealAndTransmit(p, entry.keys, EMPTY, null);
    else this.flushQueue(p, entry.keys);
    return { kind: 'handshake', peer: p.key, answered: false };
  }

  /**
   * The peer is under load and answered our initiation with a cookie: store it and repeat
   * that initiation (same bytes, now with mac2) to where the reply came from, once.
   */
  private onCookieReply(msg: CookieReply, from: E): ReceiveResult {
    const entry = this.indices.get(msg.receiverIndex);
    const p = entry?.peer;
    if (!entry || entry.keys || !p?.pending || p.pending.localIndex !== msg.receiverIndex) return this.drop('unknown_index');
    const now = this.clock();
    // the jar takes one reply per initiation, so this repeats each initiation once at most
    if (!p.cookies.consume(msg, now)) return this.drop('bad_cookie_reply', p.key);
    const pending = p.pending;
    pending.packet.set(p.cookies.mac2(pending.packet.subarray(0, MAC2_AT), now), MAC2_AT);
    this.counters.initiationsSent++;
    this.opts.transmit(p.key, pending.packet, from);
    // nothing to deliver: counted like every such datagram (a cookie reply proves nothing
    // about the peer: anyone who saw our initiation's mac1 could have made it)
    return this.drop('cookie_accepted', p.key);
  }

  private onTransport(datagram: Uint8Array, from: E): ReceiveResult {
    const index = transportReceiverIndex(datagram);
    if (typeof index === 'string') return this.drop(index);
    const entry = this.indices.get(index);
    const keys = entry?.keys;
    if (!entry || !keys) return this.drop('unknown_index');
    const p = entry.peer;
    const now = this.clock();
    if (now - keys.createdAt >= REJECT_AFTER_MS) return this.drop('expired_session', p.key);
    const plaintext = keys.openInPlace(datagram);
    if (typeof plaintext === 'string') return this.drop(plaintext, p.key);
    this.counters.received++;
    if (keys === p.next) {
      // the initiator used the session we answered: it is confirmed
      p.next = undefined;
      this.promote(p, keys);
      this.counters.handshakesCompleted++;
      this.opts.onEvent?.({ type: 'established', peer: p.key, initiator: false });
      this.flushQueue(p, keys);
    } else if (keys === p.current && keys.initiator && !p.pending && now - keys.createdAt >= RESPONDER_REKEY_AFTER_MS) {
      // we initiated this session but have been quiet senders: rekey before it expires
      this.initiate(p, now);
    }
    if (plaintext.length > 0) this.opts.deliver(p.key, plaintext, from);
    return { kind: 'data', peer: p.key, keepalive: plaintext.length === 0 };
  }

  /** `keys` becomes current; the old current stays receivable as previous. */
  private promote(p: PeerState, keys: SessionKeys): void {
    if (p.current && p.current !== keys) {
      this.retire(p.previous);
      p.previous = p.current;
    }
    p.current = keys;
  }

  private flushQueue(p: PeerState, keys: SessionKeys): void {
    const queued = p.queue;
    p.queue = [];
    for (const pt of queued) this.sealAndTransmit(p, keys, pt, null);
  }

  // ---------------------------------------------------------------- timers

  /** Earliest monotonic time at which tick() has work (Infinity if none). */
  nextDeadline(): number {
    let t = Infinity;
    for (const p of this.peers.values()) {
      if (p.pending) t = Math.min(t, p.pending.sentAt + p.retryDelayMs);
      if (p.deferredInitiationAt !== undefined) t = Math.min(t, p.deferredInitiationAt);
      for (const s of [p.current, p.previous, p.next]) if (s) t = Math.min(t, s.createdAt + REJECT_AFTER_MS);
      if (p.queue.length > 0 && !p.pending && p.next) t = Math.min(t, p.next.createdAt + HANDSHAKE_RETRY_FIRST_MS);
    }
    return t;
  }

  /** Runs due timers: handshake retries and give-ups, postponed initiations, key expiry. */
  tick(now: number = this.clock()): void {
    if (this.closed) return;
    for (const p of this.peers.values()) {
      for (const slot of ['current', 'previous', 'next'] as const) {
        const s = p[slot];
        if (s && now - s.createdAt >= REJECT_AFTER_MS) {
          this.retire(s);
          p[slot] = undefined;
        }
      }
      if (p.deferredInitiationAt !== undefined && now >= p.deferredInitiationAt) this.initiate(p, now);
      // packets wait for a responder session the initiator never confirmed: start our own
      if (p.queue.length > 0 && !p.pending && p.deferredInitiationAt === undefined && !this.sendableSession(p, now)
          && (!p.next || now - p.next.createdAt >= HANDSHAKE_RETRY_FIRST_MS)) this.initiate(p, now);
      if (p.pending && now >= p.pending.sentAt + p.retryDelayMs) {
        if (now - (p.attemptStartedAt ?? now) >= REKEY_ATTEMPT_MS) {
          const dropped = p.queue.length;
          this.abandonPending(p);
          p.attemptStartedAt = undefined;
          p.retryDelayMs = HANDSHAKE_RETRY_FIRST_MS;
          p.queue = [];
          p.lastError = `no handshake response for ${REKEY_ATTEMPT_MS / 1000} s`;
          if (dropped) this.bump('handshake_timeout_queue', dropped);
          this.opts.onEvent?.({ type: 'handshakeTimeout', peer: p.key, droppedPackets: dropped });
        } else {
          p.retryDelayMs = Math.min(p.retryDelayMs * 2, HANDSHAKE_RETRY_MAX_MS);
          this.initiate(p, now);
        }
      }
    }
  }

  // ---------------------------------------------------------------- bookkeeping

  info(peer: PeerKey): PeerSessionInfo {
    const p = this.peerOf(peer);
    const now = this.clock();
    const s = this.sendableSession(p, now);
    return {
      established: s !== undefined,
      handshakePending: p.pending !== undefined,
      handshakeAgeMs: s ? now - s.createdAt : undefined,
      lastError: p.lastError,
      queued: p.queue.length,
    };
  }

  /** Zeroes every key and forgets every session. */
  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) {
      this.abandonPending(p);
      for (const s of [p.current, p.previous, p.next]) this.retire(s);
      p.current = p.previous = p.next = undefined;
      p.queue = [];
      p.staticStatic.fill(0);
      p.cookies.destroy();
    }
    this.indices.clear();
    this.guard.destroy();
  }

  private retire(s: SessionKeys | undefined): void {
    if (!s) return;
    this.indices.delete(s.localIndex);
    s.destroy();
  }

  private allocateIndex(entry: IndexEntry): number {
    for (;;) {
      const i = this.randomIndex() >>> 0;
      if (i !== 0 && !this.indices.has(i)) {
        this.indices.set(i, entry);
        return i;
      }
    }
  }

  private peerById(key: Uint8Array): PeerState | undefined {
    return this.peers.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1'));
  }

  private peerOf(peer: PeerKey): PeerState {
    const p = this.peers.get(peer.id);
    if (!p) throw new RangeError(`not a peer of this session: ${peer.text}`);
    return p;
  }

  private drop(reason: string, peer?: PeerKey): ReceiveResult {
    this.bump(reason, 1);
    return { kind: 'dropped', reason, peer };
  }

  private bump(reason: string, n: number): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
  }
}

function defaultRandomIndex(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** Responses never carry mac2 (only initiations are screened under load): it must be all zero. */
function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}
