// The verification page a person reaches from a certificate's QR code (/verify/{number}?d=...),
// and the standalone verifier file (`kpledger verifier export`). It fetches the public answer,
// checks its proof here, in this browser, against the genesis the page carries (kpproof.js),
// and only then shows a verdict; anything that does not check shows CANNOT BE VERIFIED.
import {judge, readGenesis, engine, setFallback} from './kpproof.js';

const TEXT = {
  en: {
    title: 'Kimberley Process certificate',
    checking: 'Checking…',
    IN_FORCE: 'IN FORCE', IMPORT_CONFIRMED: 'IMPORT CONFIRMED', VOIDED: 'VOIDED', REJECTED: 'REJECTED',
    EXPIRED: 'EXPIRED', UNKNOWN_NUMBER: 'UNKNOWN NUMBER', DOCUMENT_DOES_NOT_MATCH: 'DOCUMENT DOES NOT MATCH',
    CANNOT_BE_VERIFIED: 'CANNOT BE VERIFIED',
    verified: 'Verified in this browser against the network’s genesis: the ledger’s signatures and proofs check.',
    notVerified: 'The answer could not be verified in this browser:',
    unknownDetail: 'The ledger proves that no certificate has this number.',
    mismatchDetail: 'The certificate exists, but the document you scanned is not the one it records.',
    number: 'Certificate number', exporting: 'Exporting participant', importing: 'Importing participant',
    issued: 'Date of issue', expires: 'Date of expiry', replaces: 'Replaces', history: 'History',
    asOf: 'As of block {height}, {time}', block: 'block', node: 'Node', check: 'Check', language: 'Language',
    events: {
      'certificate.issue': 'Issued', 'certificate.endorse': 'Endorsed',
      'certificate.confirm_import': 'Import confirmed', 'certificate.reject_import': 'Import rejected',
      'certificate.void': 'Voided', 'certificate.historical': 'Entered from the authority’s archive',
    },
    historical: 'HISTORICAL RECORD: a certificate from before this network, entered from its authority’s archive in the status it ended with.',
  },
  fr: {
    title: 'Certificat du Processus de Kimberley',
    checking: 'Vérification…',
    IN_FORCE: 'EN VIGUEUR', IMPORT_CONFIRMED: 'IMPORTATION CONFIRMÉE', VOIDED: 'ANNULÉ', REJECTED: 'REFUSÉ',
    EXPIRED: 'EXPIRÉ', UNKNOWN_NUMBER: 'NUMÉRO INCONNU', DOCUMENT_DOES_NOT_MATCH: 'LE DOCUMENT NE CORRESPOND PAS',
    CANNOT_BE_VERIFIED: 'VÉRIFICATION IMPOSSIBLE',
    verified: 'Vérifié dans ce navigateur par rapport à la genèse du réseau : les signatures et les preuves du registre sont valides.',
    notVerified: 'La réponse n’a pas pu être vérifiée dans ce navigateur :',
    unknownDetail: 'Le registre prouve qu’aucun certificat ne porte ce numéro.',
    mismatchDetail: 'Le certificat existe, mais le document scanné n’est pas celui qu’il enregistre.',
    number: 'Numéro du certificat', exporting: 'Participant exportateur', importing: 'Participant importateur',
    issued: 'Date de délivrance', expires: 'Date d’expiration', replaces: 'Remplace', history: 'Historique',
    asOf: 'Au bloc {height}, {time}', block: 'bloc', node: 'Nœud', check: 'Vérifier', language: 'Langue',
    events: {
      'certificate.issue': 'Délivré', 'certificate.endorse': 'Visé',
      'certificate.confirm_import': 'Importation confirmée', 'certificate.reject_import': 'Importation refusée',
      'certificate.void': 'Annulé', 'certificate.historical': 'Repris des archives de l’autorité',
    },
    historical: 'CERTIFICAT HISTORIQUE : antérieur à ce réseau, repris des archives de son autorité dans l’état où il s’est terminé.',
  },
  ru: {
    title: 'Сертификат Кимберлийского процесса',
    checking: 'Проверка…',
    IN_FORCE: 'ДЕЙСТВУЕТ', IMPORT_CONFIRMED: 'ИМПОРТ ПОДТВЕРЖДЁН', VOIDED: 'АННУЛИРОВАН', REJECTED: 'ОТКЛОНЁН',
    EXPIRED: 'ИСТЁК', UNKNOWN_NUMBER: 'НЕИЗВЕСТНЫЙ НОМЕР', DOCUMENT_DOES_NOT_MATCH: 'ДОКУМЕНТ НЕ СОВПАДАЕТ',
    CANNOT_BE_VERIFIED: 'ПРОВЕРИТЬ НЕВОЗМОЖНО',
    verified: 'Проверено в этом браузере по генезису сети: подписи и доказательства реестра верны.',
    notVerified: 'Ответ не удалось проверить в этом браузере:',
    unknownDetail: 'Реестр доказывает, что сертификата с таким номером нет.',
    mismatchDetail: 'Сертификат существует, но отсканированный документ — не тот, что в нём записан.',
    number: 'Номер сертификата', exporting: 'Участник-экспортёр', importing: 'Участник-импортёр',
    issued: 'Дата выдачи', expires: 'Дата окончания срока', replaces: 'Заменяет', history: 'История',
    asOf: 'На блок {height}, {time}', block: 'блок', node: 'Узел', check: 'Проверить', language: 'Язык',
    events: {
      'certificate.issue': 'Выдан', 'certificate.endorse': 'Заверен',
      'certificate.confirm_import': 'Импорт подтверждён', 'certificate.reject_import': 'Импорт отклонён',
      'certificate.void': 'Аннулирован', 'certificate.historical': 'Внесён из архива органа',
    },
    historical: 'ИСТОРИЧЕСКАЯ ЗАПИСЬ: сертификат до создания этой сети, внесён из архива выдавшего органа в конечном состоянии.',
  },
};
const LANGUAGES = {en: 'English', fr: 'Français', ru: 'Русский'};
//: An answer whose latest final block is older than this is refused: the node may be stale.
const MAX_AGE_MS = 24 * 3600 * 1000;

function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get('lang');
  if (asked && TEXT[asked]) return asked;
  for (const tag of navigator.languages || [navigator.language || 'en']) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (TEXT[base]) return base;
  }
  return 'en';
}

const el = (name, attrs = {}, ...children) => {
  const node = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node; // text goes in as text nodes: nothing a node says is ever parsed as HTML
};

export async function start({genesis, number, digest, nodeUrl, fallback}) {
  if (fallback) setFallback(fallback);
  const network = readGenesis(genesis);
  let lang = chooseLanguage();
  let result = null;
  const root = document.getElementById('kp-verify');

  function render() {
    const t = TEXT[lang];
    document.documentElement.lang = lang;
    document.title = `${t.title}${result && result.number ? ' ' + result.number : ''}`;
    root.replaceChildren();
    const nav = el('nav', {'aria-label': t.language, class: 'languages'});
    for (const [code, name] of Object.entries(LANGUAGES)) {
      const button = el('button', {type: 'button', lang: code, 'aria-pressed': String(code === lang)}, name);
      button.addEventListener('click', () => { lang = code; render(); });
      nav.append(button);
    }
    root.append(nav, el('h1', {}, t.title));
    if (!result && !number) return; // the standalone verifier, before its first check
    if (!result) {
      root.append(el('p', {class: 'verdict checking', id: 'verdict', role: 'status'}, t.checking));
      return;
    }
    const verdict = el('p', {class: `verdict v-${result.verdict.toLowerCase()}`, id: 'verdict',
      role: 'status', 'data-verdict': result.verdict, 'data-verified': String(result.verified)},
      t[result.verdict]);
    root.append(el('p', {class: 'number', id: 'number'}, result.number), verdict);
    if (result.verified) {
      root.append(el('p', {class: 'verified', id: 'verified'}, t.verified));
    } else {
      root.append(el('p', {class: 'not-verified', id: 'verified'}, `${t.notVerified} ${result.reason}`));
    }
    if (result.verdict === 'UNKNOWN_NUMBER') root.append(el('p', {}, t.unknownDetail));
    if (result.verdict === 'DOCUMENT_DOES_NOT_MATCH') root.append(el('p', {}, t.mismatchDetail));
    const c = result.checked;
    if (result.verified && c && c.found && c.historical) {
      root.append(el('p', {class: 'historical', id: 'historical'}, t.historical));
    }
    if (result.verified && c && c.found) {
      const facts = el('dl', {class: 'facts'});
      const fact = (label, value) => { if (value) facts.append(el('dt', {}, label), el('dd', {}, value)); };
      fact(t.exporting, c.exporting);
      fact(t.importing, c.importing);
      fact(t.issued, c.issuedOn);
      fact(t.expires, c.expiresOn);
      fact(t.replaces, c.replaces);
      root.append(facts, el('h2', {}, t.history));
      const list = el('ol', {class: 'history'});
      c.history.forEach(([type, height], i) => {
        const when = new Date(c.historyTimesMs[i]).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
        list.append(el('li', {}, `${when} — ${t.events[type] || type}, ${t.block} ${height}`));
      });
      root.append(list);
    }
    if (result.verified && c) {
      const time = new Date(c.headTimeMs).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
      root.append(el('p', {class: 'as-of'}, t.asOf.replace('{height}', c.headHeight).replace('{time}', time)));
    }
  }

  async function check(base, wanted, d) {
    result = null;
    render();
    const url = `${base}/v1/public/certificates/${encodeURIComponent(wanted)}`;
    const today = new Date().toISOString().slice(0, 10);
    let judged;
    try {
      const answer = await fetch(url, {headers: {Accept: 'application/json'}, cache: 'no-store'});
      const body = await answer.json();
      judged = await judge(answer.status, body, network, wanted, {digest: d || null, today});
      if (judged.checked && Date.now() - judged.checked.headTimeMs > MAX_AGE_MS) {
        judged = {verdict: 'CANNOT_BE_VERIFIED',
          reason: `the node's latest final block is more than 24 hours old (height ${judged.checked.headHeight}): it may be stale`};
      }
    } catch (e) {
      judged = {verdict: 'CANNOT_BE_VERIFIED', reason: String(e && e.message || e)};
    }
    result = {...judged, number: wanted, verified: judged.verdict !== 'CANNOT_BE_VERIFIED', engine};
    render();
  }

  if (number) {
    await check(nodeUrl || '', number, digest);
    return;
  }
  // The standalone verifier: the person names the node and the number.
  const form = document.getElementById('kp-form');
  form.hidden = false;
  form.addEventListener('submit', event => {
    event.preventDefault();
    const data = new FormData(form);
    const base = String(data.get('node') || '').replace(/\/+$/, '');
    const wanted = String(data.get('number') || '').trim().toUpperCase();
    if (base && wanted) check(base, wanted, String(data.get('digest') || '').trim());
  });
  render();
}
