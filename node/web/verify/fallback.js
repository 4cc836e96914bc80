// SHA-256 and Ed25519 for browsers without WebCrypto's (or pages that are not a secure context):
// noble's audited libraries, vendored under ./vendor/ (scripts/vendor_js.py, SHA256SUMS).
// Ed25519 is checked strictly (RFC 8032, not ZIP 215), as the nodes check it.
import * as ed from './vendor/ed25519/index.js';
import {sha256, sha512} from './vendor/hashes/sha2.js';

ed.hashes.sha512 = sha512;

export default {
  sha256: async data => sha256(data),
  verify: async (publicKey, message, signature) => {
    try {
      return ed.verify(signature, message, publicKey, {zip215: false});
    } catch {
      return false;
    }
  },
};
