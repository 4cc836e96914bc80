// Run docs/testvectors/public_answers.json through node/web/verify/kpproof.js (the page's own
// verifier) and print one JSON line per vector: {name, accept, reason, status, digest, history}.
//   node public_answers.mjs [--fallback]
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {contradictions, hex, readGenesis, setFallback, verifyCertificateProof} from '../../node/web/verify/kpproof.js';
import fallback from '../../node/web/verify/fallback.js';

// --fallback: check with the vendored libraries alone, as a browser without WebCrypto would.
if (process.argv.includes('--fallback')) setFallback(fallback, {only: true});

// --vectors FILE --genesis FILE: other answers and their genesis, in the same form (a test's own).
const option = flag => (process.argv.includes(flag) ? process.argv[process.argv.indexOf(flag) + 1] : null);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = file => JSON.parse(fs.readFileSync(file, 'utf8'));
const load = name => read(path.join(repo, 'docs', 'testvectors', name));
const answers = option('--vectors') ? read(option('--vectors')) : load('public_answers.json');
const genesis = readGenesis((option('--genesis') ? read(option('--genesis')) : load('genesis.json')).genesis);

for (const v of answers.vectors) {
  let out;
  try {
    const checked = await verifyCertificateProof(v.answer.proof, genesis, v.number);
    const lies = contradictions(v.http_status, v.answer, checked, answers.today);
    out = lies.length
      ? {accept: false, code: 'answer_contradicts_proof', reason: lies.join('; ')}
      : {accept: true, found: checked.found, status: checked.status,
         digest: checked.digest ? hex(checked.digest) : null,
         history: checked.history.map(([t, h, id]) => [t, h, hex(id)]), head_height: checked.headHeight,
         ...(checked.historical ? {historical: true} : {})};
  } catch (e) {
    out = {accept: false, code: e.code || 'error', reason: e.message};
  }
  console.log(JSON.stringify({name: v.name, ...out}));
}
