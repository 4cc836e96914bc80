// The KP ledger explorer page: public data of this node only, no external resources.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const RECENT_BLOCKS = 10;
  const NUMBER_PATTERN = /^[A-Z]{2}-[A-Z0-9-]{1,20}$/;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const STATUS = {
    issued: {
      label: "Issued (in force)",
      tone: "ok",
      explain: "Issued by the exporting authority and in force; the import is not yet confirmed.",
    },
    import_confirmed: {
      label: "Import confirmed",
      tone: "ok",
      explain: "The importing authority confirmed receipt of the shipment.",
    },
    import_rejected: {
      label: "Import rejected",
      tone: "bad",
      explain: "The importing authority rejected the import.",
    },
    voided: {
      label: "Voided",
      tone: "bad",
      explain: "Voided by the exporting authority; it is no longer valid.",
    },
    expired: {
      label: "Expired",
      tone: "bad",
      explain: "Past its expiry date without a confirmed import; it is no longer valid.",
    },
    not_found: {
      label: "Not on the ledger",
      tone: "bad",
      explain: "No certificate with this number has been issued on this network.",
    },
  };
  const EVENT_LABELS = {
    "certificate.issue": "Issued",
    "certificate.endorse": "Endorsed by the monitoring team",
    "certificate.confirm_import": "Import confirmed",
    "certificate.reject_import": "Import rejected",
    "certificate.void": "Voided",
  };

  const state = {
    chainId: null,
    names: {},
    validators: [],
    blocks: new Map(),
    headHeight: 0,
    paused: false,
    timer: null,
    lookupSeq: 0,
    blockSeq: 0,
  };

  // -- small DOM helpers (text only: nothing from the node is ever parsed as HTML) -----------
  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function replace(node, ...children) {
    node.replaceChildren();
    append(node, children);
  }

  async function getJSON(path) {
    try {
      const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      return { status: response.status, ok: response.ok, body };
    } catch (error) {
      return { status: 0, ok: false, body: { error: "unreachable", message: "the node could not be reached" } };
    }
  }

  function problem(answer) {
    const body = answer.body || {};
    if (answer.status === 429) return "This node is rate-limiting requests from your address; try again in a moment.";
    if (answer.status === 0) return "The node could not be reached.";
    return `The node answered ${answer.status}: ${body.message || body.error || "no details"}.`;
  }

  // -- formatting ----------------------------------------------------------------------------
  function utc(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }

  function utcIso(iso) {
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? iso : utc(ms);
  }

  function shortHash(hex) {
    return hex.slice(0, 16) + "…";
  }

  function participantLabel(code) {
    const name = state.names[code];
    return name ? `${code} (${name})` : code;
  }

  // Carats and US$ are decimal strings with two places: add them as whole hundredths, never floats.
  function hundredths(text) {
    const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(text));
    if (!m) return 0n;
    const value = BigInt(m[2]) * 100n + BigInt((m[3] || "0").padEnd(2, "0"));
    return m[1] ? -value : value;
  }

  function groupDigits(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function formatHundredths(value) {
    const negative = value < 0n;
    const abs = negative ? -value : value;
    const whole = groupDigits((abs / 100n).toString());
    const cents = (abs % 100n).toString().padStart(2, "0");
    return `${negative ? "-" : ""}${whole}.${cents}`;
  }

  function compact(value) {
    const abs = Math.abs(value);
    if (abs >= 1e9) return (value / 1e9).toFixed(abs >= 1e10 ? 0 : 1) + " bn";
    if (abs >= 1e6) return (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + " M";
    if (abs >= 1e4) return (value / 1e3).toFixed(0) + " k";
    return groupDigits(String(Math.round(value)));
  }

  // -- the network: genesis and participant register ------------------------------------------
  async function loadNetwork() {
    const [genesis, found] = await Promise.all([
      getJSON("/v1/public/genesis"),
      getJSON("/v1/public/participants"),
    ]);
    if (genesis.ok) {
      state.chainId = genesis.body.chain_id;
      $("chain-id").textContent = state.chainId;
    }
    const target = $("participants-result");
    if (!found.ok) {
      replace(target, el("p", { class: "error", text: problem(found) }));
      return;
    }
    state.validators = found.body.validators.map((v) => v.participant);
    for (const p of found.body.participants) state.names[p.code] = p.name;
    renderParticipants(found.body);
  }

  function renderParticipants(data) {
    const validatorIndex = new Map(data.validators.map((v, i) => [v.participant, i]));
    const rows = data.participants.map((p) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", class: "mono", text: p.code }),
        el("td", { text: p.name }),
        el("td", { text: p.countries.join(", ") }),
        el("td", {}, el("span", { class: `tag ${p.active ? "tag-ok" : "tag-bad"}`, text: p.active ? "Active" : "Suspended" })),
        el("td", { text: validatorIndex.has(p.code) ? `Yes (no. ${validatorIndex.get(p.code)})` : "No" }),
        el("td", { text: p.restricted ? "Yes: origins restricted" : "No" }),
      ),
    );
    replace(
      $("participants-result"),
      el(
        "div",
        { class: "table-scroll" },
        el(
          "table",
          { class: "data" },
          el("caption", { text: `${data.participants.length} participants; ${data.validators.length} validator nodes propose blocks in turn.` }),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ["Code", "Participant", "Countries", "Status", "Validator", "Restricted"].map((h) => el("th", { scope: "col", text: h })),
            ),
          ),
          el("tbody", {}, rows),
        ),
      ),
      registerHistory(data.history || []),
    );
  }

  // What governance changed (admissions, suspensions, key rotations...), by height in force.
  function registerHistory(history) {
    const changes = history.flatMap((h) => h.changes.map((c) => ({ height: h.height, ...c })));
    if (changes.length === 0) {
      return el("p", { class: "status-explain", text: "The register is still the one in genesis: no governance change yet." });
    }
    const rows = changes.map((c) =>
      el(
        "tr",
        {},
        el("td", { class: "num", text: String(c.height) }),
        el("td", { text: c.kind.replace(/_/g, " ") }),
        el("td", { class: "mono", text: c.subject }),
        el("td", { text: c.detail }),
      ),
    );
    return el(
      "div",
      { class: "table-scroll" },
      el(
        "table",
        { class: "data" },
        el("caption", { text: "Register history: each change is in force from the height shown." }),
        el(
          "thead",
          {},
          el("tr", {}, ["From height", "Change", "Participant", "Detail"].map((h) => el("th", { scope: "col", text: h }))),
        ),
        el("tbody", {}, rows),
      ),
    );
  }

  // -- recent blocks ---------------------------------------------------------------------------
  function proposer(index) {
    const code = state.validators[index];
    return code ? participantLabel(code) : `validator no. ${index}`;
  }

  async function refreshBlocks() {
    const summary = $("head-summary");
    const answer = await getJSON("/v1/public/head");
    if (!answer.ok) {
      summary.textContent = answer.status === 404 ? "No block is final yet." : problem(answer);
      return;
    }
    const head = answer.body.header;
    const changed = head.height !== state.headHeight;
    state.blocks.set(head.height, head);
    const wanted = [];
    for (let h = head.height; h >= Math.max(1, head.height - RECENT_BLOCKS + 1); h--) wanted.push(h);
    const missing = wanted.filter((h) => !state.blocks.has(h));
    const fetched = await Promise.all(missing.map((h) => getJSON(`/v1/public/blocks/${h}`)));
    fetched.forEach((r) => {
      if (r.ok) state.blocks.set(r.body.header.height, r.body.header);
    });
    for (const h of state.blocks.keys()) if (!wanted.includes(h)) state.blocks.delete(h);
    state.headHeight = head.height;
    const now = new Date().toISOString().slice(11, 19);
    summary.textContent = `Latest final block: height ${head.height}, ${utc(head.time_ms)} UTC. Checked at ${now} UTC${state.paused ? " (updates paused)" : ""}.`;
    if (changed || missing.length) renderBlocks(wanted);
  }

  function renderBlocks(heights) {
    const rows = heights
      .filter((h) => state.blocks.has(h))
      .map((h) => {
        const b = state.blocks.get(h);
        return el(
          "tr",
          {},
          el(
            "th",
            { scope: "row", class: "num" },
            el("button", { type: "button", class: "link", "aria-label": `Show block ${h}`, onclick: () => showBlock(h), text: String(h) }),
          ),
          el("td", { text: utc(b.time_ms) }),
          el("td", { class: "num", text: String(b.event_count) }),
          el("td", { text: proposer(b.proposer) }),
          el("td", { class: "mono", title: b.hash, text: shortHash(b.hash) }),
        );
      });
    replace($("blocks-table").tBodies[0], rows);
  }

  async function showBlock(height) {
    const target = $("block-detail");
    const seq = ++state.blockSeq;
    replace(target, el("p", { class: "loading", text: `Loading block ${height}…` }));
    const answer = await getJSON(`/v1/public/blocks/${height}`);
    if (seq !== state.blockSeq) return;
    if (!answer.ok) {
      replace(target, el("p", { class: "error", text: problem(answer) }));
      return;
    }
    const h = answer.body.header;
    const commit = answer.body.commit_certificate;
    const signers = commit.signatures.map((s) => state.validators[s.validator] || `no. ${s.validator}`);
    const heading = el("h3", { id: "block-detail-title", tabindex: "-1", text: `Block ${h.height}` });
    replace(
      target,
      el(
        "article",
        { class: "panel", "aria-labelledby": "block-detail-title" },
        heading,
        facts([
          ["Time", `${utc(h.time_ms)} UTC`],
          ["Proposer", proposer(h.proposer)],
          ["Signed by", `${signers.length} of ${state.validators.length || "?"} validators: ${signers.join(", ")} (round ${commit.round})`],
          ["Events", String(h.event_count)],
          ["Block hash", h.hash, "mono"],
          ["Previous block", h.prev_hash, "mono"],
          ["Events root", h.events_root, "mono"],
          ["State root", h.state_root, "mono"],
        ]),
        answer.body.events.length
          ? el(
              "div",
              { class: "table-scroll" },
              el(
                "table",
                { class: "data" },
                el("caption", { text: "Events in this block. Which certificate an event concerns is not published per block; look a certificate up by its number." }),
                el("thead", {}, el("tr", {}, ["#", "Event", "Event id"].map((t) => el("th", { scope: "col", class: t === "#" ? "num" : null, text: t })))),
                el(
                  "tbody",
                  {},
                  answer.body.events.map((e, i) =>
                    el(
                      "tr",
                      {},
                      el("td", { class: "num", text: String(i) }),
                      el("td", { text: EVENT_LABELS[e.type] || e.type }),
                      el("td", { class: "mono break", text: e.event_id }),
                    ),
                  ),
                ),
              ),
            )
          : el("p", { text: "This block has no events." }),
      ),
    );
    heading.focus();
  }

  function facts(items) {
    return el(
      "dl",
      { class: "facts" },
      items
        .filter((item) => item[1] !== null && item[1] !== undefined && item[1] !== "")
        .map(([term, value, cls]) => [el("dt", { text: term }), el("dd", { class: cls || null, text: value })]),
    );
  }

  function toggleRefresh() {
    state.paused = !state.paused;
    const button = $("refresh-toggle");
    button.setAttribute("aria-pressed", String(state.paused));
    button.textContent = state.paused ? "Resume updates" : "Pause updates";
    if (state.paused) {
      clearInterval(state.timer);
      state.timer = null;
    } else {
      refreshBlocks();
      state.timer = setInterval(refreshBlocks, REFRESH_MS);
    }
  }

  // -- certificate lookup ----------------------------------------------------------------------
  async function lookup(raw, fromForm) {
    const number = raw.trim().toUpperCase();
    const target = $("cert-result");
    $("cert-number").value = number;
    if (!NUMBER_PATTERN.test(number)) {
      replace(
        target,
        el(
          "p",
          { class: "error", id: "cert-status", "data-status": "malformed" },
          `“${number}” is not a certificate number. It looks like BE-2026-000123: two letters, a dash, then up to 20 letters, digits and dashes.`,
        ),
      );
      return;
    }
    const url = new URL(window.location.href);
    url.searchParams.set("cert", number);
    history.replaceState(null, "", url.pathname + url.search + (fromForm ? "#lookup" : url.hash));
    const seq = ++state.lookupSeq;
    target.setAttribute("aria-busy", "true");
    replace(target, el("p", { class: "loading", text: `Checking ${number}…` }));
    const path = encodeURIComponent(number);
    const [pub, verified] = await Promise.all([
      getJSON(`/v1/public/certificates/${path}`),
      getJSON(`/v1/public/verify/${path}`),
    ]);
    if (seq !== state.lookupSeq) return;
    target.removeAttribute("aria-busy");
    if (pub.status === 404 && pub.body && pub.body.error === "certificate_not_found") {
      renderNotFound(number, verified);
    } else if (!pub.ok) {
      replace(target, el("p", { class: "error", id: "cert-status", "data-status": "error", text: problem(pub) }));
    } else {
      renderCertificate(pub.body, verified);
    }
    if (fromForm) {
      const heading = $("cert-title");
      if (heading) heading.focus();
    }
  }

  function verifyCommand(number) {
    return `kpledger verify ${number} --node ${window.location.origin} --genesis genesis.json`;
  }

  function verificationBox(number, verified, absence) {
    const body = verified.body || {};
    let proof = body.proof;
    if (!verified.ok && !(absence && verified.status === 404)) proof = "unavailable";
    const valid = proof === "valid";
    const title = valid
      ? absence
        ? "Proof of absence checked"
        : "Proof checked: valid"
      : proof === "invalid"
        ? "Proof does NOT check"
        : "Proof could not be checked";
    const message = proof === "unavailable" ? problem(verified) : body.message || "";
    return el(
      "div",
      { class: `verification ${valid ? "verification-ok" : "verification-bad"}`, id: "cert-verification", "data-proof": proof || "unavailable" },
      el("p", { class: "verification-title" }, el("span", { class: "mark", "aria-hidden": "true", text: valid ? "✓" : "✗" }), " ", title),
      el("p", { text: message ? message.charAt(0).toUpperCase() + message.slice(1) + "." : "" }),
      valid
        ? null
        : el("p", { class: "strong", text: "Do not rely on this node's answer. Verify the certificate independently." }),
      el(
        "p",
        { class: "small" },
        "This check was made by the node that served this page, against the network's genesis keys. For independent verification, run ",
        el("code", { class: "break", text: verifyCommand(number) }),
        " with the genesis.json obtained from your KP authority.",
      ),
    );
  }

  function statusBadge(status) {
    const info = STATUS[status] || { label: status, tone: "bad", explain: "" };
    return el(
      "p",
      { class: "status-row" },
      el("span", { id: "cert-status", class: `status status-${info.tone}`, "data-status": status, text: info.label }),
      " ",
      el("span", { class: "status-explain", text: info.explain }),
    );
  }

  function renderNotFound(number, verified) {
    replace(
      $("cert-result"),
      el(
        "article",
        { class: "panel certificate", "aria-labelledby": "cert-title" },
        el("h3", { id: "cert-title", tabindex: "-1" }, "Certificate ", el("span", { class: "mono", text: number })),
        statusBadge("not_found"),
        verificationBox(number, verified, true),
      ),
    );
  }

  function renderCertificate(c, verified) {
    const body = verified.body || {};
    // The status shown is the one the proof establishes; the node's own claim must agree with it.
    let status = c.status;
    let mismatch = null;
    if (verified.ok && body.proof === "valid") {
      if (body.status !== c.status) mismatch = `The node's answer says “${c.status}” but its proof establishes “${body.status}”.`;
      status = body.status;
    }
    const history = c.history.map((h) =>
      el(
        "tr",
        {},
        el("td", { text: EVENT_LABELS[h.type] || h.type }),
        el("td", { text: utcIso(h.time) }),
        el(
          "td",
          { class: "num" },
          el("button", { type: "button", class: "link", "aria-label": `Show block ${h.height}`, onclick: () => showBlockFromLookup(h.height), text: String(h.height) }),
        ),
        el("td", { class: "mono", title: h.event_id, text: shortHash(h.event_id) }),
      ),
    );
    replace(
      $("cert-result"),
      el(
        "article",
        { class: "panel certificate", "aria-labelledby": "cert-title" },
        el("h3", { id: "cert-title", tabindex: "-1" }, "Certificate ", el("span", { class: "mono", text: c.number })),
        statusBadge(status),
        mismatch ? el("p", { class: "error", text: mismatch }) : null,
        verificationBox(c.number, verified, false),
        facts([
          ["Exporting participant", participantLabel(c.exporting_participant)],
          ["Importing participant", participantLabel(c.importing_participant)],
          ["Issued on", c.issued_on],
          ["Expires on", c.expires_on],
          ["Replaces", c.replaces],
          ["Replaced by", c.replaced_by],
          ["Reason for voiding", c.void_reason],
          ["Certificate digest", c.digest, "mono break"],
        ]),
        el("h4", { text: "History" }),
        el(
          "div",
          { class: "table-scroll" },
          el(
            "table",
            { class: "data" },
            el("caption", { class: "visually-hidden", text: `Events of certificate ${c.number}` }),
            el("thead", {}, el("tr", {}, ["Event", "Time (UTC)", "Block", "Event id"].map((t) => el("th", { scope: "col", class: t === "Block" ? "num" : null, text: t })))),
            el("tbody", {}, history),
          ),
        ),
      ),
    );
  }

  function showBlockFromLookup(height) {
    $("blocks").scrollIntoView();
    showBlock(height);
  }

  // -- statistics ------------------------------------------------------------------------------
  function zero() {
    return { certificates: 0, carats: 0n, value: 0n, hidden: 0 };
  }

  // Cells of fewer than min_cell certificates publish their count only: their carats and value
  // are left out of the totals, and `hidden` counts the certificates so left out.
  function totals(rows) {
    const byParticipant = new Map();
    for (const row of rows) {
      if (!byParticipant.has(row.participant)) byParticipant.set(row.participant, { exporter: zero(), importer: zero() });
      const t = byParticipant.get(row.participant)[row.role];
      t.certificates += row.certificates;
      if (row.suppressed) {
        t.hidden += row.certificates;
      } else {
        t.carats += hundredths(row.carats);
        t.value += hundredths(row.value_usd);
      }
    }
    return byParticipant;
  }

  function partialAmount(t, amount) {
    if (t.hidden && t.hidden === t.certificates) return "not published (small cells)";
    const shown = formatHundredths(amount);
    return t.hidden ? `${shown} + ${t.hidden} cert. not shown` : shown;
  }

  async function loadStats(year, quarter) {
    const target = $("stats-result");
    target.setAttribute("aria-busy", "true");
    replace(target, el("p", { class: "loading", text: "Loading statistics…" }));
    const [whole, ...quarters] = await Promise.all([
      getJSON(`/v1/public/stats?year=${year}${quarter ? `&quarter=${quarter}` : ""}`),
      ...[1, 2, 3, 4].map((q) => getJSON(`/v1/public/stats?year=${year}&quarter=${q}`)),
    ]);
    target.removeAttribute("aria-busy");
    if (!whole.ok) {
      replace(target, el("p", { class: "error", text: problem(whole) }));
      return;
    }
    const period = quarter ? `${year} Q${quarter}` : String(year);
    const byParticipant = totals(whole.body.rows);
    const codes = [...byParticipant.keys()].sort();
    const perQuarter = quarters.map((answer) => {
      const t = { exporter: 0, importer: 0 };
      if (answer.ok) for (const row of answer.body.rows) t[row.role] += row.certificates;
      return t;
    });
    const children = [];
    // Public figures cover closed quarters only, each frozen some days after the quarter's end.
    const waiting = (whole.body.quarters || []).filter((q) => !q.published);
    if (waiting.length) {
      const which = waiting.map((q) => `Q${q.quarter} from ${q.publishes_on}`).join(", ");
      children.push(el("p", { class: "notice", id: "stats-unpublished", text: `Not published yet: ${which}. Public figures cover closed quarters, each frozen after the quarter's end.` }));
    }
    if (!codes.length) {
      children.push(el("p", { class: "notice", text: `No certificates in the published figures for ${period}.` }));
    } else {
      children.push(
        el(
          "div",
          { class: "charts" },
          chartFigure(
            `Carats exported and imported, ${period}`,
            horizontalBars(
              "chart-carats",
              `Carats by participant, ${period}`,
              codes,
              [
                { name: "Exported", cls: "series-export", values: codes.map((c) => Number(byParticipant.get(c).exporter.carats) / 100) },
                { name: "Imported (confirmed)", cls: "series-import", values: codes.map((c) => Number(byParticipant.get(c).importer.carats) / 100) },
              ],
              (v) => `${compact(v)} ct`,
            ),
          ),
          chartFigure(
            `Value exported and imported (US$), ${period}`,
            horizontalBars(
              "chart-value",
              `Value in US dollars by participant, ${period}`,
              codes,
              [
                { name: "Exported", cls: "series-export", values: codes.map((c) => Number(byParticipant.get(c).exporter.value) / 100) },
                { name: "Imported (confirmed)", cls: "series-import", values: codes.map((c) => Number(byParticipant.get(c).importer.value) / 100) },
              ],
              (v) => `$${compact(v)}`,
            ),
          ),
        ),
      );
    }
    children.push(
      chartFigure(
        `Certificates per quarter of ${year}`,
        verticalBars(
          "chart-quarters",
          `Certificates per quarter of ${year}`,
          ["Q1", "Q2", "Q3", "Q4"],
          [
            { name: "Issued (exports)", cls: "series-export", values: perQuarter.map((t) => t.exporter) },
            { name: "Imports confirmed", cls: "series-import", values: perQuarter.map((t) => t.importer) },
          ],
          quarter,
        ),
      ),
    );
    if (codes.length) {
      children.push(totalsTable(codes, byParticipant, period, whole.body.min_cell));
      children.push(detailTable(whole.body.rows, period));
    }
    replace(target, children);
  }

  function totalsTable(codes, byParticipant, period, minCell) {
    const cells = (t) => [
      el("td", { class: "num", text: String(t.certificates) }),
      el("td", { class: "num", text: partialAmount(t, t.carats) }),
      el("td", { class: "num", text: partialAmount(t, t.value) }),
    ];
    return el(
      "div",
      { class: "table-scroll" },
      el(
        "table",
        { class: "data", id: "stats-table" },
        el("caption", { text: `Totals per participant, ${period} (all HS codes). Carats and value of cells with fewer than ${minCell} certificates are not published, and not counted here.` }),
        el(
          "thead",
          {},
          el("tr", {}, el("td", {}), el("th", { scope: "colgroup", colspan: "3", class: "group", text: "Exports" }), el("th", { scope: "colgroup", colspan: "3", class: "group", text: "Imports (confirmed)" })),
          el(
            "tr",
            {},
            ["Participant", "Certificates", "Carats", "US$", "Certificates", "Carats", "US$"].map((t, i) => el("th", { scope: "col", class: i ? "num" : null, text: t })),
          ),
        ),
        el(
          "tbody",
          {},
          codes.map((code) => {
            const t = byParticipant.get(code);
            return el("tr", {}, el("th", { scope: "row", text: participantLabel(code) }), cells(t.exporter), cells(t.importer));
          }),
        ),
      ),
    );
  }

  function detailTable(rows, period) {
    return el(
      "details",
      { class: "detail" },
      el("summary", { text: `Figures by participant, role and HS code, ${period}` }),
      el(
        "div",
        { class: "table-scroll" },
        el(
          "table",
          { class: "data" },
          el("caption", { class: "visually-hidden", text: `Figures by participant, role and HS code, ${period}` }),
          el("thead", {}, el("tr", {}, ["Participant", "Role", "HS code", "Certificates", "Carats", "US$"].map((t, i) => el("th", { scope: "col", class: i >= 3 ? "num" : null, text: t })))),
          el(
            "tbody",
            {},
            rows.map((r) =>
              el(
                "tr",
                {},
                el("td", { text: r.participant }),
                el("td", { text: r.quarter ? `${r.role} (Q${r.quarter})` : r.role }),
                el("td", { text: r.hs_code }),
                el("td", { class: "num", text: String(r.certificates) }),
                el("td", { class: "num", text: r.suppressed ? "suppressed (small cell)" : formatHundredths(hundredths(r.carats)) }),
                el("td", { class: "num", text: r.suppressed ? "suppressed (small cell)" : formatHundredths(hundredths(r.value_usd)) }),
              ),
            ),
          ),
        ),
      ),
    );
  }

  // -- charts: inline SVG drawn here, no library --------------------------------------------------
  function chartFigure(caption, chart) {
    return el("figure", { class: "chart" }, el("figcaption", { text: caption }), chart);
  }

  function niceMax(max) {
    if (max <= 0) return 1;
    const magnitude = 10 ** Math.floor(Math.log10(max));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= max) return step * magnitude;
    return 10 * magnitude;
  }

  function legend(series, x, y) {
    return svg(
      "g",
      { class: "legend", transform: `translate(${x},${y})` },
      series.map((s, i) =>
        svg(
          "g",
          { transform: `translate(${i * 200},0)` },
          svg("rect", { class: s.cls, width: 14, height: 14, y: -12 }),
          svg("text", { x: 18, text: s.name }),
        ),
      ),
    );
  }

  function describe(categories, series, format) {
    return categories
      .map((c, i) => `${c}: ${series.map((s) => `${s.name.toLowerCase()} ${format(s.values[i])}`).join(", ")}`)
      .join("; ");
  }

  function horizontalBars(id, title, categories, series, format) {
    const width = 520;
    const left = 44;
    const right = 80;
    const top = 38;
    const bar = 17;
    const groupGap = 14;
    const groupHeight = series.length * bar + groupGap;
    const plotWidth = width - left - right;
    const height = top + categories.length * groupHeight + 26;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
    const scale = (v) => (Math.max(0, v) / max) * plotWidth;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
    const chart = svg(
      "svg",
      { id, class: "chart-svg", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc`, preserveAspectRatio: "xMinYMin meet" },
      svg("title", { id: `${id}-title`, text: title }),
      svg("desc", { id: `${id}-desc`, text: describe(categories, series, format) }),
      legend(series, left, 16),
      ticks.map((t) =>
        svg(
          "g",
          {},
          svg("line", { class: "grid", x1: left + scale(t), x2: left + scale(t), y1: top - 6, y2: height - 22 }),
          svg("text", { class: "axis", x: left + scale(t), y: height - 8, "text-anchor": "middle", text: format(t) }),
        ),
      ),
      categories.map((category, i) => {
        const y = top + i * groupHeight;
        return svg(
          "g",
          {},
          svg("text", { class: "category", x: left - 8, y: y + (series.length * bar) / 2 + 4, "text-anchor": "end", text: category }),
          series.map((s, j) => {
            const w = scale(s.values[i]);
            const by = y + j * bar;
            return svg(
              "g",
              {},
              svg("rect", { class: s.cls, x: left, y: by, width: Math.max(w, s.values[i] > 0 ? 1 : 0), height: bar - 2 }, svg("title", { text: `${participantLabel(category)}, ${s.name.toLowerCase()}: ${format(s.values[i])}` })),
              svg("text", { class: "value", x: left + w + 4, y: by + bar - 4, text: format(s.values[i]) }),
            );
          }),
        );
      }),
    );
    return chart;
  }

  function verticalBars(id, title, categories, series, highlight) {
    const width = 640;
    const height = 240;
    const left = 48;
    const right = 12;
    const top = 34;
    const bottom = 28;
    const plotHeight = height - top - bottom;
    const groupWidth = (width - left - right) / categories.length;
    const bar = Math.min(40, (groupWidth - 24) / series.length);
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
    const scale = (v) => (Math.max(0, v) / max) * plotHeight;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max).filter((t, i, all) => i === 0 || Math.round(t) !== Math.round(all[i - 1]));
    const format = (v) => groupDigits(String(Math.round(v)));
    return svg(
      "svg",
      { id, class: "chart-svg", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc`, preserveAspectRatio: "xMinYMin meet" },
      svg("title", { id: `${id}-title`, text: title }),
      svg("desc", { id: `${id}-desc`, text: describe(categories, series, format) }),
      legend(series, left, 16),
      ticks.map((t) =>
        svg(
          "g",
          {},
          svg("line", { class: "grid", x1: left, x2: width - right, y1: top + plotHeight - scale(t), y2: top + plotHeight - scale(t) }),
          svg("text", { class: "axis", x: left - 6, y: top + plotHeight - scale(t) + 4, "text-anchor": "end", text: format(t) }),
        ),
      ),
      categories.map((category, i) => {
        const x0 = left + i * groupWidth;
        const groupStart = x0 + (groupWidth - bar * series.length) / 2;
        return svg(
          "g",
          {},
          highlight === i + 1 ? svg("rect", { class: "highlight", x: x0 + 2, y: top - 4, width: groupWidth - 4, height: plotHeight + 4 }) : null,
          series.map((s, j) => {
            const h = scale(s.values[i]);
            const x = groupStart + j * bar;
            return svg(
              "g",
              {},
              svg("rect", { class: s.cls, x: x + 1, y: top + plotHeight - h, width: bar - 2, height: h }, svg("title", { text: `${category}, ${s.name.toLowerCase()}: ${format(s.values[i])}` })),
              svg("text", { class: "value", x: x + bar / 2, y: top + plotHeight - h - 4, "text-anchor": "middle", text: format(s.values[i]) }),
            );
          }),
          svg("text", { class: "category", x: x0 + groupWidth / 2, y: height - 8, "text-anchor": "middle", text: category }),
        );
      }),
    );
  }

  // -- start -------------------------------------------------------------------------------------
  async function init() {
    $("node-host").textContent = window.location.host;
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookup($("cert-number").value, true);
    });
    $("refresh-toggle").addEventListener("click", toggleRefresh);
    const year = new Date().getUTCFullYear();
    $("stats-year").value = String(year);
    $("stats-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const y = parseInt($("stats-year").value, 10);
      const q = $("stats-quarter").value;
      if (y >= 1900 && y <= 9999) loadStats(y, q ? parseInt(q, 10) : null);
    });
    await loadNetwork();
    const wanted = new URLSearchParams(window.location.search).get("cert");
    const tasks = [refreshBlocks(), loadStats(year, null)];
    if (wanted) tasks.push(lookup(wanted, false));
    await Promise.all(tasks);
    state.timer = setInterval(refreshBlocks, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
