// kpledger's public certificate proof, checked with nothing but genesis (docs/proofs.md), in a
// browser or under Node.js. A port of ledger/proofs.py's verify_certificate_proof and of
// node/views.py's public_answer_contradictions; docs/testvectors/public_answers.json is the judge
// (tests/node/test_verify_js.py runs every vector through this file).
//
// Ed25519 and SHA-256 come from WebCrypto. Where a browser lacks WebCrypto's Ed25519 (or the page
// is not a secure context, so crypto.subtle is absent), setFallback() installs another
// implementation with the same signatures (node/web/verify/ vendors one).

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', {fatal: true});

// -- errors --------------------------------------------------------------------------------------
export class InvalidProof extends Error {
  constructor(message) {
    super(message);
    this.code = 'invalid_proof';
  }
}
const fail = message => { throw new InvalidProof(message); };

// -- bytes ---------------------------------------------------------------------------------------
export const hex = bytes => Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 || /[^0-9a-fA-F]/.test(text)) fail('not hex');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}
export function fromBase64(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    fail('the proof is not valid base64');
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const equal = (a, b) => a instanceof Uint8Array && b instanceof Uint8Array &&
  a.length === b.length && a.every((x, i) => x === b[i]);
const isHash = v => v instanceof Uint8Array && v.length === 32;

// -- canonical msgpack (docs/protocol.md section 1): nil, bool, int, str, bin, array ------------
export function decode(bytes) {
  let at = 0;
  const need = n => { if (at + n > bytes.length) fail('the proof is malformed: truncated'); };
  const uint = n => {
    need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[at + i]);
    at += n;
    return v;
  };
  const num = v => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v);
  const take = n => { need(n); const out = bytes.slice(at, at + n); at += n; return out; };
  const str = n => { try { return dec.decode(take(n)); } catch { fail('the proof is malformed: bad UTF-8'); } };
  const array = (n, depth) => { const out = []; for (let i = 0; i < n; i++) out.push(item(depth + 1)); return out; };
  function item(depth) {
    if (depth > 32) fail('the proof is malformed: nested too deeply');
    need(1);
    const b = bytes[at++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x90) return array(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(Number(uint(1)));
      case 0xc5: return take(Number(uint(2)));
      case 0xc6: return take(Number(uint(4)));
      case 0xcc: return num(uint(1));
      case 0xcd: return num(uint(2));
      case 0xce: return num(uint(4));
      case 0xcf: return num(uint(8));
      case 0xd0: return num(BigInt.asIntN(8, uint(1)));
      case 0xd1: return num(BigInt.asIntN(16, uint(2)));
      case 0xd2: return num(BigInt.asIntN(32, uint(4)));
      case 0xd3: return num(BigInt.asIntN(64, uint(8)));
      case 0xd9: return str(Number(uint(1)));
      case 0xda: return str(Number(uint(2)));
      case 0xdb: return str(Number(uint(4)));
      case 0xdc: return array(Number(uint(2)), depth);
      case 0xdd: return array(Number(uint(4)), depth);
      default: fail(`the proof is malformed: msgpack type 0x${b.toString(16)} is never used`);
    }
  }
  const value = item(0);
  if (at !== bytes.length) fail('the proof is malformed: bytes after the object');
  // One value has one encoding: anything that does not re-encode to the same bytes is refused.
  if (!equal(encode(value), bytes)) fail('the proof is malformed: not the canonical encoding');
  return value;
}

export function encode(value) {
  const out = [];
  const be = (v, n) => { for (let i = n - 1; i >= 0; i--) out.push(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn)); };
  const len = (n, small, forms) => {
    if (small !== null && n < small[0]) { out.push(small[1] | n); return; }
    for (const [limit, code, size] of forms) if (n < limit) { out.push(code); be(n, size); return; }
    throw new Error('too long');
  };
  function put(v) {
    if (v === null || v === undefined) out.push(0xc0);
    else if (v === false) out.push(0xc2);
    else if (v === true) out.push(0xc3);
    else if (typeof v === 'number' || typeof v === 'bigint') {
      const n = BigInt(v);
      if (n >= 0n) {
        if (n < 128n) out.push(Number(n));
        else if (n < 0x100n) { out.push(0xcc); be(n, 1); }
        else if (n < 0x10000n) { out.push(0xcd); be(n, 2); }
        else if (n < 0x100000000n) { out.push(0xce); be(n, 4); }
        else { out.push(0xcf); be(n, 8); }
      } else if (n >= -32n) out.push(Number(n + 0x100n));
      else if (n >= -0x80n) { out.push(0xd0); be(BigInt.asUintN(8, n), 1); }
      else if (n >= -0x8000n) { out.push(0xd1); be(BigInt.asUintN(16, n), 2); }
      else if (n >= -0x80000000n) { out.push(0xd2); be(BigInt.asUintN(32, n), 4); }
      else { out.push(0xd3); be(BigInt.asUintN(64, n), 8); }
    } else if (typeof v === 'string') {
      const b = enc.encode(v);
      len(b.length, [32, 0xa0], [[0x100, 0xd9, 1], [0x10000, 0xda, 2], [2 ** 32, 0xdb, 4]]);
      out.push(...b);
    } else if (v instanceof Uint8Array) {
      len(v.length, null, [[0x100, 0xc4, 1], [0x10000, 0xc5, 2], [2 ** 32, 0xc6, 4]]);
      for (const x of v) out.push(x);
    } else if (Array.isArray(v)) {
      len(v.length, [16, 0x90], [[0x10000, 0xdc, 2], [2 ** 32, 0xdd, 4]]);
      v.forEach(put);
    } else throw new Error(`cannot encode ${typeof v}`);
  }
  put(value);
  return Uint8Array.from(out);
}

// -- hashes and signatures ----------------------------------------------------------------------
let subtle = globalThis.crypto && globalThis.crypto.subtle;
let fallback = null;

/**
 * Install {sha256(bytes) -> Promise<bytes>, verify(publicKey, message, signature) -> Promise<bool>},
 * used where WebCrypto lacks them; with {only: true}, used instead of WebCrypto (tests).
 */
export function setFallback(impl, {only = false} = {}) {
  fallback = impl;
  if (only) { subtle = null; webcryptoEd25519 = false; engine = 'fallback'; }
}

/** What this browser checks with: 'webcrypto' or 'fallback'. */
export let engine = 'webcrypto';

export async function sha256(data) {
  if (subtle) {
    try { return new Uint8Array(await subtle.digest('SHA-256', data)); } catch (e) { if (!fallback) throw e; }
  }
  if (!fallback) fail('this browser has no SHA-256 (no WebCrypto and no fallback)');
  engine = 'fallback';
  return fallback.sha256(data);
}

const keys = new Map();
let webcryptoEd25519 = null; // null: not tried yet
async function ed25519Verify(publicKey, message, signature) {
  if (webcryptoEd25519 !== false && subtle) {
    try {
      const id = hex(publicKey);
      let key = keys.get(id);
      if (!key) {
        key = await subtle.importKey('raw', publicKey, {name: 'Ed25519'}, false, ['verify']);
        keys.set(id, key);
      }
      const ok = await subtle.verify({name: 'Ed25519'}, key, signature, message);
      webcryptoEd25519 = true;
      return ok;
    } catch (e) {
      if (webcryptoEd25519 === true) return false; // a key WebCrypto refuses is no valid key
      webcryptoEd25519 = false;
    }
  }
  if (!fallback) fail('this browser has no Ed25519 (no WebCrypto Ed25519 and no fallback)');
  engine = 'fallback';
  return fallback.verify(publicKey, message, signature);
}

const tag = text => enc.encode(text);
const tagged = (t, data) => concat(tag(t), Uint8Array.of(0), data);
export const taggedHash = (t, data) => sha256(tagged(t, data));

// -- genesis --------------------------------------------------------------------------------------
/** The parts of genesis.json a verifier needs: chain id and validators [participant, key, address]. */
export function readGenesis(json) {
  if (!json || typeof json.chain_id !== 'string' || !Array.isArray(json.validators) || !json.validators.length) {
    fail('genesis is malformed');
  }
  return {
    chainId: json.chain_id,
    validators: json.validators.map(v => [String(v.participant), fromHex(v.node_key), String(v.address)]),
  };
}

const validatorsHash = validators => taggedHash('kp/validators/1', encode(validators));

// -- pieces of the proof -------------------------------------------------------------------------
function header(bytes) {
  const h = decode(bytes);
  if (!Array.isArray(h) || h.length !== 12 || h[0] !== 1) fail('the proof is malformed: a header');
  const [, chainId, height, prevHash, timeMs, proposer, eventsRoot, eventCount, stateRoot,
    validatorsHashV, nextValidatorsHash, registryHash] = h;
  for (const v of [height, timeMs, proposer, eventCount]) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail('the proof is malformed: a header');
  }
  for (const v of [prevHash, eventsRoot, stateRoot, validatorsHashV, nextValidatorsHash, registryHash]) {
    if (!isHash(v)) fail('the proof is malformed: a header');
  }
  if (typeof chainId !== 'string' || height < 1) fail('the proof is malformed: a header');
  return {bytes, chainId, height, timeMs, eventsRoot, eventCount, stateRoot,
    validatorsHash: validatorsHashV, nextValidatorsHash};
}

async function finalHeader(wire) {
  if (!Array.isArray(wire) || wire.length !== 2 || !(wire[0] instanceof Uint8Array)) {
    fail('the proof is malformed: a final header is [header bytes, commit certificate]');
  }
  const h = header(wire[0]);
  h.hash = await taggedHash('kp/header/1', wire[0]);
  const c = wire[1];
  if (!Array.isArray(c) || c.length !== 5 || c[0] !== 'commit' || !Array.isArray(c[4]) ||
      !Number.isInteger(c[1]) || !Number.isInteger(c[2]) || !isHash(c[3])) {
    fail('the proof is malformed: a commit certificate');
  }
  const signatures = c[4].map(e => {
    if (!Array.isArray(e) || e.length !== 2 || !Number.isInteger(e[0]) || !(e[1] instanceof Uint8Array) || e[1].length !== 64) {
      fail('the proof is malformed: commit signatures');
    }
    return e;
  });
  return {header: h, commit: {height: c[1], round: c[2], value: c[3], signatures}};
}

async function checkFinal(final, genesis, validators, isGenesisSet) {
  const h = final.header;
  if (h.chainId !== genesis.chainId) fail(`header ${h.height} is of chain '${h.chainId}', not this network's`);
  if (!equal(h.validatorsHash, await validatorsHash(validators))) {
    const known = isGenesisSet ? 'genesis does not know' : 'not in force at its height';
    fail(`header ${h.height} names a validator set ${known} (is a validator change missing from the proof?)`);
  }
  const c = final.commit;
  if (c.height !== h.height || !equal(c.value, h.hash)) fail(`the commit certificate is not for header ${h.height}`);
  const where = `header ${h.height} is not final: commit certificate for height ${c.height}`;
  const n = validators.length;
  let previous = -1;
  for (const [index] of c.signatures) {
    if (index < 0 || index >= n) fail(`${where}: signer ${index} is not a validator (there are ${n})`);
    if (index === previous) fail(`${where}: validator ${index} signs twice`);
    if (index < previous) fail(`${where}: signers are not sorted by index (${previous} before ${index})`);
    previous = index;
  }
  const needed = Math.floor((2 * n) / 3) + 1;
  if (c.signatures.length < needed) {
    fail(`${where}: too few signers: ${c.signatures.length} of ${n} validators, ${needed} needed`);
  }
  const payload = tagged('kp/vote/1', encode(['vote', genesis.chainId, 2, c.height, c.round, c.value]));
  for (const [index, signature] of c.signatures) {
    if (!(await ed25519Verify(validators[index][1], payload, signature))) {
      fail(`${where}: bad precommit signature from validator ${index}`);
    }
  }
}

async function validatorSets(genesis, changes, headHeight) {
  const sets = [[1, genesis.validators]];
  for (const wire of changes) {
    if (!Array.isArray(wire) || wire.length !== 2 || !Array.isArray(wire[1])) {
      fail('the proof is malformed: a validator change is [final header, validators]');
    }
    const final = await finalHeader(wire[0]);
    const next = wire[1].map(v => {
      if (!Array.isArray(v) || v.length !== 3 || typeof v[0] !== 'string' || !isHash(v[1]) || typeof v[2] !== 'string') {
        fail('the proof is malformed: a validator');
      }
      return v;
    });
    const h = final.header;
    const [first, current] = sets[sets.length - 1];
    if (h.height < first || h.height + 1 > headHeight) fail('the validator changes are out of order or beyond the head');
    await checkFinal(final, genesis, current, current === genesis.validators);
    const newHash = await validatorsHash(next);
    if (!equal(h.nextValidatorsHash, newHash)) {
      fail(`the validator set given for height ${h.height + 1} is not the one header ${h.height} names next (forged validator change)`);
    }
    if (equal(newHash, h.validatorsHash) || !next.length) fail(`header ${h.height} does not change the validator set`);
    sets.push([h.height + 1, next]);
  }
  return async final => {
    let found = sets[0][1];
    for (const [first, validators] of sets) if (first <= final.header.height) found = validators;
    await checkFinal(final, genesis, found, found === genesis.validators);
  };
}

const bit = (key, depth) => (key[depth >> 3] >> (7 - (depth & 7))) & 1;
function commonPrefixBits(a, b) {
  for (let i = 0; i < 256; i++) if (bit(a, i) !== bit(b, i)) return i;
  return 256;
}

async function verifyStateProof(root, key, valueHash, wire) {
  if (!Array.isArray(wire) || wire.length !== 2 || !Array.isArray(wire[1])) return false;
  const [leaf, siblings] = wire;
  if (siblings.length > 256 || !siblings.every(isHash)) return false;
  const depth = siblings.length;
  let node;
  if (leaf === null) {
    if (valueHash !== null) return false;
    node = new Uint8Array(32);
  } else {
    if (!Array.isArray(leaf) || leaf.length !== 2 || !isHash(leaf[0]) || !isHash(leaf[1])) return false;
    const [leafKey, leafValue] = leaf;
    if (valueHash !== null) {
      if (!equal(leafKey, key) || !equal(leafValue, valueHash)) return false;
    } else if (equal(leafKey, key) || commonPrefixBits(leafKey, key) < depth) return false;
    node = await taggedHash('kp/state-leaf/1', concat(leafKey, leafValue));
  }
  for (let d = depth - 1; d >= 0; d--) {
    node = await taggedHash('kp/state-node/1', bit(key, d) ? concat(siblings[d], node) : concat(node, siblings[d]));
  }
  return equal(node, root);
}

async function verifyInclusion(leafData, index, size, path, root) {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  if (!Array.isArray(path) || !path.every(isHash)) return false;
  let fn = index, sn = size - 1;
  let r = await sha256(concat(Uint8Array.of(0), leafData));
  for (const p of path) {
    if (sn === 0) return false;
    if ((fn & 1) || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (!(fn & 1)) while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 && equal(r, root);
}

const FINAL_STATUS = {
  'certificate.issue': 'issued',
  'certificate.endorse': 'issued',
  'certificate.confirm_import': 'import_confirmed',
  'certificate.reject_import': 'import_rejected',
  'certificate.void': 'voided',
};
const STATUSES = ['issued', 'import_confirmed', 'import_rejected', 'voided'];

const HISTORICAL = 'certificate.historical';

// A record from before the network (ledger/proofs.py _check_historical): its first account and at
// most the counterpart's beside it, in any final status; no other event follows.
function checkHistorical(history, leaf) {
  if (history.length > 2 || history.some(([t]) => t !== HISTORICAL)) {
    fail("a historical record's history is its one or two accounts, and nothing else");
  }
  const [, lastHeight, lastId] = history[history.length - 1];
  if (!equal(lastId, leaf.lastEventId) || lastHeight !== leaf.lastHeight) {
    fail('the history does not end with the event the status names (incomplete)');
  }
}

function checkHistory(history, leaf) {
  if (!history.length) fail('the proof carries no history');
  if (history[0][0] === HISTORICAL) return checkHistorical(history, leaf);
  if (history.some(([t]) => !(t in FINAL_STATUS))) fail('the history holds an event that is not about a certificate');
  if (history[0][0] !== 'certificate.issue' || history.slice(1).some(([t]) => t === 'certificate.issue')) {
    fail('the history must start with the issue, and only once');
  }
  const decisions = history.length > 1 && history[1][0] === 'certificate.endorse' ? history.slice(2) : history.slice(1);
  if (decisions.length > 1 || decisions.some(([t]) => t === 'certificate.endorse')) {
    fail('a certificate has at most one event after its issue and endorsement');
  }
  const [lastType, lastHeight, lastId] = history[history.length - 1];
  if (!equal(lastId, leaf.lastEventId) || lastHeight !== leaf.lastHeight) {
    fail('the history does not end with the event the status names (incomplete)');
  }
  if (FINAL_STATUS[lastType] !== leaf.status) fail('the history does not lead to the status');
}

// -- the proof -----------------------------------------------------------------------------------
/**
 * Check a proof (base64, as the node serves it) against genesis alone. Resolves to what it
 * establishes ({number, found, status, digest, history, headHeight, headTimeMs, exporting,
 * importing, issuedOn, expiresOn, replaces, historyTimesMs, historical}); rejects with InvalidProof naming the
 * first thing wrong.
 */
export async function verifyCertificateProof(proofBase64, genesis, number) {
  const obj = decode(fromBase64(proofBase64));
  if (!Array.isArray(obj) || obj.length !== 10 || obj[0] !== 2) fail('the proof is malformed: not a version 2 certificate proof');
  const [, proofNumber, headWire, leafWire, stateProof, events, headersWire, publicWire, confidential, changes] = obj;
  if (typeof proofNumber !== 'string' || !Array.isArray(events) || !Array.isArray(headersWire) || !Array.isArray(changes)) {
    fail('the proof is malformed');
  }
  if (number !== undefined && proofNumber !== number) fail(`the proof is about ${proofNumber}, not ${number}`);
  const head = await finalHeader(headWire);
  const check = await validatorSets(genesis, changes, head.header.height);
  await check(head);
  const h = head.header;
  const key = await sha256(enc.encode(proofNumber));
  if (leafWire === null) {
    if (!(await verifyStateProof(h.stateRoot, key, null, stateProof))) fail('the proof of absence does not match the state root');
    if (events.length || headersWire.length || publicWire !== null || confidential !== null) {
      fail('a proof of absence carries no history or facts');
    }
    return {number: proofNumber, found: false, status: null, digest: null, history: [], headHeight: h.height, headTimeMs: h.timeMs};
  }
  if (!Array.isArray(leafWire) || leafWire.length !== 4) fail('the proof is malformed: the status leaf');
  const [status, digest, lastEventId, lastHeight] = leafWire;
  if (!STATUSES.includes(status)) fail(`unknown status '${status}'`);
  if (!isHash(digest) || !isHash(lastEventId) || !Number.isInteger(lastHeight)) fail('the proof is malformed: the status leaf');
  const leaf = {status, digest, lastEventId, lastHeight};
  const value = await taggedHash('kp/state-value/1', encode([proofNumber, status, digest, lastEventId, lastHeight]));
  if (!(await verifyStateProof(h.stateRoot, key, value, stateProof))) {
    fail('the status does not match the state root of the latest final header (stale or altered status)');
  }
  if (lastHeight > h.height) fail('the status claims a height after the head');
  const headers = new Map([[h.height, h]]);
  for (const wire of headersWire) {
    const final = await finalHeader(wire);
    await check(final);
    headers.set(final.header.height, final.header);
  }
  const history = [];
  const times = [];
  let previous = 0;
  for (const [position, item] of events.entries()) {
    if (!Array.isArray(item) || item.length !== 5 || !isHash(item[0]) || typeof item[1] !== 'string' || !Number.isInteger(item[2])) {
      fail('the proof is malformed: an event inclusion');
    }
    const [eventId, type, height, index, path] = item;
    const block = headers.get(height);
    if (!block) fail(`no final header is given for height ${height}`);
    if (height < previous) fail('the history is out of order');
    previous = height;
    if (!(await verifyInclusion(encode([eventId, type, proofNumber]), index, block.eventCount, path, block.eventsRoot))) {
      fail(`event ${position + 1} of the history is not in block ${height}`);
    }
    history.push([type, height, eventId]);
    times.push(block.timeMs);
  }
  checkHistory(history, leaf);
  if (!Array.isArray(publicWire) || publicWire.length !== 6 || !publicWire.every(x => typeof x === 'string') || !isHash(confidential)) {
    fail("the proof lacks the certificate's public facts");
  }
  const facts = await taggedHash('kp/certificate/1', encode([publicWire, confidential]));
  if (!equal(facts, digest) || publicWire[0] !== proofNumber) fail('the public facts do not match the certificate digest');
  return {
    number: proofNumber, found: true, status, digest, history, headHeight: h.height, headTimeMs: h.timeMs,
    exporting: publicWire[1], importing: publicWire[2], issuedOn: publicWire[3], expiresOn: publicWire[4],
    replaces: publicWire[5], historyTimesMs: times, historical: history[0][0] === HISTORICAL,
  };
}

// -- the plain fields against the proof (node/views.py public_answer_contradictions) --------------
const addDays = (isoDate, days) => {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
};

function statusAgrees(stated, checked, today) {
  if (stated === checked.status) {
    if (stated !== 'issued' || !checked.expiresOn) return true;
    return addDays(today, -1) <= checked.expiresOn;
  }
  if (stated === 'expired' && checked.status === 'issued' && checked.expiresOn) return checked.expiresOn < addDays(today, 1);
  return false;
}

const py = v => (v === null || v === undefined ? 'None' : typeof v === 'string' ? `'${v}'`
  : typeof v === 'boolean' ? (v ? 'True' : 'False') : JSON.stringify(v));

/** Where the answer's JSON fields say otherwise than its checked proof (empty: they agree). */
export function contradictions(httpStatus, body, checked, today) {
  const found = [];
  const differs = (field, stated, proven) => found.push(`${field} ${py(stated)} where the proof says ${py(proven)}`);
  if ('number' in body && body.number !== checked.number) differs('number', body.number, checked.number);
  if (!checked.found) {
    if (httpStatus !== 404 || body.error !== 'certificate_not_found') {
      found.push(`the answer (${httpStatus}) describes a certificate the proof shows is not on the ledger`);
    }
    for (const field of ['status', 'ledger_status', 'digest', 'history']) {
      if (field in body) found.push(`${field} is given for a number the proof shows is not on the ledger`);
    }
    return found;
  }
  if (httpStatus !== 200 || 'error' in body) {
    const said = [httpStatus, body.error].filter(x => x !== undefined && x !== null).join(' ');
    found.push(`the answer (${said}) denies a certificate the proof shows on the ledger`);
  }
  if ('ledger_status' in body && body.ledger_status !== checked.status) differs('ledger_status', body.ledger_status, checked.status);
  if ('status' in body && !statusAgrees(body.status, checked, today)) differs('status', body.status, checked.status);
  if ('digest' in body) {
    const proven = hex(checked.digest);
    if (typeof body.digest !== 'string' || body.digest.toLowerCase() !== proven) differs('digest', body.digest, proven);
  }
  const facts = {
    exporting_participant: checked.exporting, importing_participant: checked.importing,
    issued_on: checked.issuedOn, expires_on: checked.expiresOn,
  };
  for (const [field, proven] of Object.entries(facts)) if (field in body && body[field] !== proven) differs(field, body[field], proven);
  const replaces = checked.replaces || null;
  const stated = 'replaces' in body ? body.replaces : null;
  if (stated !== replaces) differs('replaces', stated, replaces);
  const historical = Boolean(checked.historical);
  if (Boolean(body.historical) !== historical) differs('historical', 'historical' in body ? body.historical : false, historical);
  if ('history' in body) {
    const proven = checked.history.map(([type, height, id]) => ({event_id: hex(id), type, height}));
    if (!Array.isArray(body.history) || body.history.length !== proven.length) {
      const count = Array.isArray(body.history) ? body.history.length : 'no';
      found.push(`history has ${count} entries where the proof has ${proven.length}`);
    } else {
      body.history.forEach((entry, i) => {
        const p = proven[i];
        const time = new Date(checked.historyTimesMs[i]).toISOString().replace('Z', '+00:00');
        if (!entry || typeof entry !== 'object' || entry.type !== p.type || entry.height !== p.height ||
            typeof entry.event_id !== 'string' || entry.event_id.toLowerCase() !== p.event_id ||
            ('time' in entry && entry.time !== time)) {
          found.push(`history entry ${i + 1} differs from the proof`);
        }
      });
    }
  }
  return found;
}

// -- the verdict a person reads --------------------------------------------------------------------
/**
 * One answer of GET /v1/public/certificates/{number}, judged. Resolves to
 * {verdict, checked?, reason?} where verdict is one of IN_FORCE, IMPORT_CONFIRMED, VOIDED,
 * REJECTED, EXPIRED, UNKNOWN_NUMBER, DOCUMENT_DOES_NOT_MATCH, CANNOT_BE_VERIFIED.
 */
export async function judge(httpStatus, body, genesis, number, {digest = null, today} = {}) {
  let checked;
  try {
    if (!body || typeof body !== 'object' || typeof body.proof !== 'string') fail('the node gave no proof');
    checked = await verifyCertificateProof(body.proof, genesis, number);
    const lies = contradictions(httpStatus, body, checked, today);
    if (lies.length) fail(`the node's answer contradicts its own proof (${lies.join('; ')})`);
  } catch (e) {
    return {verdict: 'CANNOT_BE_VERIFIED', reason: e instanceof InvalidProof ? e.message : String(e && e.message || e)};
  }
  if (!checked.found) return {verdict: 'UNKNOWN_NUMBER', checked};
  if (digest !== null && digest.toLowerCase() !== hex(checked.digest)) return {verdict: 'DOCUMENT_DOES_NOT_MATCH', checked};
  const verdict = {
    issued: checked.expiresOn && today > checked.expiresOn ? 'EXPIRED' : 'IN_FORCE',
    import_confirmed: 'IMPORT_CONFIRMED',
    import_rejected: 'REJECTED',
    voided: 'VOIDED',
  }[checked.status];
  return {verdict, checked};
}
