// A third-party check of kpledger credentials: Digital Bazaar's VC library with the
// eddsa-rdfc-2022 cryptosuite, sharing no code with kpledger. Nothing is fetched: the VC 2.0
// context comes from its npm package, kpledger's context is inline, did:key resolves locally.
//   node verify.mjs [--now ISO-DATETIME] CREDENTIAL.json ...
//   -> one JSON line per file: {"file", "verified", "error"}
import fs from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {driver} from '@digitalbazaar/did-method-key';
import {JsonLdDocumentLoader} from 'jsonld-document-loader';
import {contexts} from '@digitalbazaar/credentials-context';

const didKey = driver();
didKey.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});
const loader = new JsonLdDocumentLoader();
loader.addDocuments({documents: [...contexts]});
const shipped = loader.build();
const documentLoader = async url => {
  if (url.startsWith('did:key:')) {
    return {contextUrl: null, documentUrl: url, document: await didKey.get({url})};
  }
  return shipped(url);
};

const args = process.argv.slice(2);
let now;
if (args[0] === '--now') {
  now = new Date(args[1]);
  args.splice(0, 2);
}

for (const file of args) {
  const credential = JSON.parse(fs.readFileSync(file, 'utf8'));
  const suite = new DataIntegrityProof({cryptosuite});
  let out;
  try {
    const result = await vc.verifyCredential({credential, suite, documentLoader, ...(now ? {now} : {})});
    const errors = result.error ? (result.error.errors || [result.error]).map(e => String(e.message || e)) : [];
    out = {file, verified: result.verified === true, error: errors.join('; ') || null};
  } catch (e) {
    out = {file, verified: false, error: String(e && e.message || e)};
  }
  console.log(JSON.stringify(out));
}
