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
    "certificate.historical": "Entered from its authority's archive (historical record)",
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

  // A table that scrolls sideways when it is wider than the screen, under a caption that does
  // not: the caption is a paragraph above the scrolling box (a <caption> is as wide as its table,
  // so on a phone it was cut off at the screen's edge) and names the table (aria-labelledby).
  // A caption meant for screen readers only stays a visually hidden <caption>.
  let tableSeq = 0;
  function dataTable(options, ...children) {
    const attrs = { class: "data", id: options.id || null };
    if (options.hidden) {
      return el("div", { class: "table-scroll" }, el("table", attrs, el("caption", { class: "visually-hidden", text: options.caption }), children));
    }
    const captionId = `${options.id || "table"}-caption-${++tableSeq}`;
    return el(
      "div",
      { class: "table-block" },
      el("p", { class: "table-caption", id: captionId, text: options.caption }),
      el("div", { class: "table-scroll", role: "region", tabindex: "0", "aria-labelledby": captionId }, el("table", { ...attrs, "aria-labelledby": captionId }, children)),
    );
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
      dataTable(
        { caption: `${data.participants.length} participants; ${data.validators.length} validator nodes propose blocks in turn.` },
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
    return dataTable(
      { caption: "Register history: each change is in force from the height shown." },
      el(
        "thead",
        {},
        el("tr", {}, ["From height", "Change", "Participant", "Detail"].map((h) => el("th", { scope: "col", text: h }))),
      ),
      el("tbody", {}, rows),
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
          ? dataTable(
              { caption: "Events in this block. Which certificate an event concerns is not published per block; look a certificate up by its number." },
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
        c.historical
          ? el("p", {
              id: "cert-historical",
              class: "status-explain",
              text: "Historical record: a certificate from before this network, entered from its authority's archive in the status it ended with. No event follows it.",
            })
          : null,
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
        dataTable(
          { caption: `Events of certificate ${c.number}`, hidden: true },
          el("thead", {}, el("tr", {}, ["Event", "Time (UTC)", "Block", "Event id"].map((t) => el("th", { scope: "col", class: t === "Block" ? "num" : null, text: t })))),
          el("tbody", {}, history),
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

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
  }

  const ROLES = [
    { role: "exporter", name: "Exported", verb: "exported", noun: "exports", cls: "series-export" },
    { role: "importer", name: "Imported (confirmed)", verb: "imported", noun: "imports", cls: "series-import" },
  ];

  // What an amount chart draws of one participant's exports or imports. Only published cells
  // are drawn: "unpublished" (every cell too small) has no bar, "partial" a bar of its published
  // cells, marked; "none" (no certificate at all) has no bar either, and says so.
  function amountPoint(t, amount) {
    if (t.certificates === 0) return { state: "none", value: null, hidden: 0 };
    if (t.hidden === t.certificates) return { state: "unpublished", value: null, hidden: t.hidden };
    return { state: t.hidden ? "partial" : "published", value: Number(amount) / 100, hidden: t.hidden };
  }

  function amountSeries(codes, byParticipant, field) {
    return ROLES.map((r) => ({ ...r, points: codes.map((c) => amountPoint(byParticipant.get(c)[r.role], byParticipant.get(c)[r.role][field])) }));
  }

  // The caption under an amount chart: what it leaves out, and why.
  function amountNote(codes, series, minCell) {
    const unpublished = [];
    const partial = [];
    const none = [];
    codes.forEach((code, i) => {
      for (const s of series) {
        const p = s.points[i];
        const what = `${code} ${s.noun}`;
        if (p.state === "unpublished") unpublished.push(what);
        else if (p.state === "partial") partial.push(`${what} (${plural(p.hidden, "certificate")} left out)`);
        else if (p.state === "none") none.push(what);
      }
    });
    const parts = [];
    if (unpublished.length) parts.push(`Not drawn: ${unpublished.join(", ")}: every cell of them has fewer than ${minCell} certificates, and the carats and value of such cells are not published.`);
    if (partial.length) parts.push(`Marked *: drawn from their published cells only, without the cells of fewer than ${minCell} certificates: ${partial.join(", ")}.`);
    if (none.length) parts.push(`${none.join(", ")}: none.`);
    if (!unpublished.length && !partial.length) parts.push("Every cell is published: nothing is left out.");
    return parts.join(" ");
  }

  // One quarter's certificate counts (counts are published even for small cells), or why not.
  function quarterPoint(answer) {
    if (answer.ok) {
      const t = { state: "published", exporter: 0, importer: 0 };
      for (const row of answer.body.rows) t[row.role] += row.certificates;
      return t;
    }
    const body = answer.body || {};
    if (answer.status === 404 && body.error === "statistics_not_published") return { state: "waiting", publishesOn: body.publishes_on };
    return { state: "unavailable", problem: problem(answer) };
  }

  function quarterNote(points) {
    const waiting = [];
    const unavailable = [];
    points.forEach((p, i) => {
      if (p.state === "waiting") waiting.push(`Q${i + 1}${p.publishesOn ? ` (published from ${p.publishesOn})` : ""}`);
      if (p.state === "unavailable") unavailable.push(`Q${i + 1} (${p.problem})`);
    });
    const parts = [];
    if (waiting.length) parts.push(`Not drawn: ${waiting.join(", ")}: not published yet.`);
    if (unavailable.length) parts.push(`Not drawn: ${unavailable.join(", ")}.`);
    if (!parts.length) parts.push("Every quarter is published: nothing is left out.");
    parts.push("Counts include the cells too small to publish carats and value.");
    return parts.join(" ");
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
    const minCell = whole.body.min_cell;
    const perQuarter = quarters.map(quarterPoint);
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
      const carats = amountSeries(codes, byParticipant, "carats");
      const value = amountSeries(codes, byParticipant, "value");
      children.push(
        el(
          "div",
          { class: "charts" },
          chartFigure("chart-carats", `Carats exported and imported, ${period}`, carats, (width) => ({
            chart: horizontalBars("chart-carats", `Carats by participant, ${period}`, codes, carats, (v) => `${compact(v)} ct`, width),
            note: amountNote(codes, carats, minCell),
          })),
          chartFigure("chart-value", `Value exported and imported (US$), ${period}`, value, (width) => ({
            chart: horizontalBars("chart-value", `Value in US dollars by participant, ${period}`, codes, value, (v) => `$${compact(v)}`, width),
            note: amountNote(codes, value, minCell),
          })),
        ),
      );
    }
    const quarterSeries = [
      { name: "Issued (exports)", cls: "series-export", role: "exporter" },
      { name: "Imports confirmed", cls: "series-import", role: "importer" },
    ];
    children.push(
      chartFigure("chart-quarters", `Certificates per quarter of ${year}`, quarterSeries, (width) => ({
        chart: verticalBars("chart-quarters", `Certificates per quarter of ${year}`, perQuarter, quarterSeries, quarter, width),
        note: quarterNote(perQuarter),
      })),
    );
    if (codes.length) {
      children.push(totalsTable(codes, byParticipant, period, minCell));
      children.push(detailTable(whole.body.rows, period));
    }
    if (resizer) resizer.disconnect();
    replace(target, children);
    drawCharts(target);
  }

  function totalsTable(codes, byParticipant, period, minCell) {
    const cells = (t) => [
      el("td", { class: "num", text: String(t.certificates) }),
      el("td", { class: "num", text: partialAmount(t, t.carats) }),
      el("td", { class: "num", text: partialAmount(t, t.value) }),
    ];
    return dataTable(
      { id: "stats-table", caption: `Totals per participant, ${period} (all HS codes). Carats and value of cells with fewer than ${minCell} certificates are not published, and not counted here.` },
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
    );
  }

  function detailTable(rows, period) {
    return el(
      "details",
      { class: "detail" },
      el("summary", { text: `Figures by participant, role and HS code, ${period}` }),
      dataTable(
        { caption: `Figures by participant, role and HS code, ${period}`, hidden: true },
        el("thead", {}, el("tr", {}, ["Participant", "Role", "HS code", "Certificates", "Carats", "US$"].map((t, i) => el("th", { scope: "col", class: i >= 3 ? "num" : null, text: t })))),
        el(
          "tbody",
          {},
          rows.map((r) =>
            el(
              "tr",
              {},
              el("td", { text: r.participant }),
              el("td", { text: r.role }),
              el("td", { text: r.hs_code }),
              el("td", { class: "num", text: String(r.certificates) }),
              el("td", { class: "num", text: r.suppressed ? "suppressed (small cell)" : formatHundredths(hundredths(r.carats)) }),
              el("td", { class: "num", text: r.suppressed ? "suppressed (small cell)" : formatHundredths(hundredths(r.value_usd)) }),
            ),
          ),
        ),
      ),
    );
  }

  // -- charts: inline SVG drawn here, no library --------------------------------------------------
  // Each chart is drawn for the width it has, one SVG unit to one CSS pixel, so that its labels
  // keep the type size of the style sheet on a phone as on a desk (a chart scaled down to a
  // phone's width had labels of 7 px). It is drawn again when its width changes.
  const resizer = typeof ResizeObserver === "function" ? new ResizeObserver((entries) => entries.forEach((e) => drawChart(e.target))) : null;
  const MAX_CHART_WIDTH = 720;

  function chartFigure(id, caption, series, draw) {
    const note = el("p", { class: "chart-note", id: `${id}-note` });
    const body = el("div", { class: "chart-body" });
    body.chart = { draw, note, width: 0 };
    return el(
      "figure",
      { class: "chart" },
      el("figcaption", { text: caption }),
      el(
        "ul",
        { class: "chart-legend" },
        series.map((s) => el("li", {}, el("span", { class: `swatch ${s.cls}`, "aria-hidden": "true" }), s.name)),
      ),
      body,
      note,
    );
  }

  function drawChart(body) {
    if (!body.chart || !body.isConnected) return;
    const width = Math.min(MAX_CHART_WIDTH, Math.floor(body.clientWidth) || MAX_CHART_WIDTH);
    if (width === body.chart.width) return;
    body.chart.width = width;
    const drawn = body.chart.draw(width);
    replace(body, drawn.chart);
    body.chart.note.textContent = drawn.note;
  }

  function drawCharts(root) {
    for (const body of root.querySelectorAll(".chart-body")) {
      drawChart(body);
      if (resizer) resizer.observe(body);
    }
  }

  // Text widths as the page draws them, to leave room for labels.
  const measurer = document.createElement("canvas").getContext("2d");
  function textWidth(text, px, weight) {
    if (!measurer) return String(text).length * px * 0.62;
    measurer.font = `${weight || 400} ${px}px ${getComputedStyle(document.body).fontFamily}`;
    return measurer.measureText(String(text)).width;
  }

  const LABEL_PX = 13; // .chart-svg text.value and text.axis in explorer.css
  const CATEGORY_PX = 14; // .chart-svg text.category

  function niceMax(max) {
    if (max <= 0) return 1;
    const magnitude = 10 ** Math.floor(Math.log10(max));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= max) return step * magnitude;
    return 10 * magnitude;
  }

  // As many evenly spaced ticks (2 to 5) as there is room for their labels.
  function ticksFor(max, room, format) {
    const widest = Math.max(...[0, 0.5, 1].map((f) => textWidth(format(f * max), LABEL_PX)));
    const count = Math.max(2, Math.min(5, Math.floor(room / (widest + 18)) + 1));
    return Array.from({ length: count }, (_, i) => (i / (count - 1)) * max);
  }

  function pointLabel(point, format) {
    if (point.state === "unpublished") return "not published";
    if (point.state === "none") return "none";
    return format(point.value) + (point.state === "partial" ? " *" : "");
  }

  function pointTitle(point, format) {
    if (point.state === "unpublished") return `not published (${plural(point.hidden, "certificate")} in cells too small to publish)`;
    if (point.state === "none") return "none";
    const without = point.hidden === 1 ? "1 certificate in a cell too small to publish" : `${point.hidden} certificates in cells too small to publish`;
    return point.state === "partial" ? `${format(point.value)}, without ${without}` : format(point.value);
  }

  function horizontalBars(id, title, categories, series, format, width) {
    const left = Math.ceil(Math.max(...categories.map((c) => textWidth(c, CATEGORY_PX, 600)))) + 14;
    const labels = series.flatMap((s) => s.points.map((p) => pointLabel(p, format)));
    const right = Math.ceil(Math.max(40, ...labels.map((l) => textWidth(l, LABEL_PX)))) + 10;
    const top = 8;
    const bar = 18;
    const groupGap = 12;
    const groupHeight = series.length * bar + groupGap;
    const plotWidth = Math.max(40, width - left - right);
    const height = top + categories.length * groupHeight + 26;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.value || 0))));
    const scale = (v) => (Math.max(0, v) / max) * plotWidth;
    const description = categories
      .map((c, i) => `${c}: ${series.map((s) => `${s.verb} ${pointTitle(s.points[i], format)}`).join(", ")}`)
      .join("; ");
    return svg(
      "svg",
      { id, class: "chart-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-desc ${id}-note` },
      svg("title", { id: `${id}-title`, text: title }),
      svg("desc", { id: `${id}-desc`, text: description }),
      ticksFor(max, plotWidth, format).map((t) =>
        svg(
          "g",
          {},
          svg("line", { class: "grid", x1: left + scale(t), x2: left + scale(t), y1: top - 4, y2: height - 22 }),
          svg("text", { class: "axis", x: left + scale(t), y: height - 6, "text-anchor": "middle", text: format(t) }),
        ),
      ),
      categories.map((category, i) => {
        const y = top + i * groupHeight;
        return svg(
          "g",
          {},
          svg("text", { class: "category", x: left - 8, y: y + (series.length * bar) / 2 + 5, "text-anchor": "end", text: category }),
          series.map((s, j) => {
            const point = s.points[i];
            const by = y + j * bar;
            const w = point.value === null ? 0 : scale(point.value);
            const tip = `${participantLabel(category)}, ${s.verb}: ${pointTitle(point, format)}`;
            // Nothing drawn for what is not published: its label says so (the tooltip, why).
            return svg(
              "g",
              { "data-state": point.state },
              point.value === null
                ? svg("title", { text: tip })
                : svg("rect", { class: s.cls, x: left, y: by, width: Math.max(w, point.value > 0 ? 1 : 0), height: bar - 3 }, svg("title", { text: tip })),
              svg("text", { class: point.value === null ? "value missing" : "value", x: left + w + 4, y: by + bar - 5, text: pointLabel(point, format) }),
            );
          }),
        );
      }),
    );
  }

  function verticalBars(id, title, points, series, highlight, width) {
    const height = 250;
    const counts = points.flatMap((p) => (p.state === "published" ? series.map((s) => p[s.role]) : []));
    const max = niceMax(Math.max(0, ...counts));
    const format = (v) => groupDigits(String(Math.round(v)));
    // Whole numbers only: counts of certificates.
    const parts = [4, 5, 2, 1].find((n) => Number.isInteger(max / n));
    const ticks = Array.from({ length: parts + 1 }, (_, i) => (i * max) / parts);
    const left = Math.ceil(Math.max(...ticks.map((t) => textWidth(format(t), LABEL_PX)))) + 12;
    const right = 8;
    const top = 24;
    const bottom = 30;
    const plotHeight = height - top - bottom;
    const groupWidth = (width - left - right) / points.length;
    const bar = Math.min(44, (groupWidth - 12) / series.length);
    const scale = (v) => (Math.max(0, v) / max) * plotHeight;
    const description = points
      .map((p, i) => `Q${i + 1}: ${p.state === "published" ? series.map((s) => `${s.name.toLowerCase()} ${format(p[s.role])}`).join(", ") : "not published"}`)
      .join("; ");
    return svg(
      "svg",
      { id, class: "chart-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-desc ${id}-note` },
      svg("title", { id: `${id}-title`, text: title }),
      svg("desc", { id: `${id}-desc`, text: description }),
      ticks.map((t) =>
        svg(
          "g",
          {},
          svg("line", { class: "grid", x1: left, x2: width - right, y1: top + plotHeight - scale(t), y2: top + plotHeight - scale(t) }),
          svg("text", { class: "axis", x: left - 6, y: top + plotHeight - scale(t) + 4, "text-anchor": "end", text: format(t) }),
        ),
      ),
      points.map((point, i) => {
        const x0 = left + i * groupWidth;
        const middle = x0 + groupWidth / 2;
        const groupStart = x0 + (groupWidth - bar * series.length) / 2;
        const category = `Q${i + 1}`;
        return svg(
          "g",
          { "data-state": point.state },
          highlight === i + 1 ? svg("rect", { class: "highlight", x: x0 + 2, y: top - 4, width: groupWidth - 4, height: plotHeight + 4 }) : null,
          point.state === "published"
            ? series.map((s, j) => {
                const h = scale(point[s.role]);
                const x = groupStart + j * bar;
                return svg(
                  "g",
                  {},
                  svg("rect", { class: s.cls, x: x + 1, y: top + plotHeight - h, width: bar - 2, height: h }, svg("title", { text: `${category}, ${s.name.toLowerCase()}: ${format(point[s.role])}` })),
                  svg("text", { class: "value", x: x + bar / 2, y: top + plotHeight - h - 5, "text-anchor": "middle", text: format(point[s.role]) }),
                );
              })
            : [
                svg("text", { class: "value missing", x: middle, y: top + plotHeight / 2 - 4, "text-anchor": "middle", text: point.state === "waiting" ? "not yet" : "could not" }),
                svg("text", { class: "value missing", x: middle, y: top + plotHeight / 2 + 13, "text-anchor": "middle", text: point.state === "waiting" ? "published" : "be read" }),
              ],
          svg("text", { class: "category", x: middle, y: height - 8, "text-anchor": "middle", text: category }),
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
    // ?year=2026&quarter=2 opens the statistics of that period (a link to share); else this year.
    const params = new URLSearchParams(window.location.search);
    const askedYear = parseInt(params.get("year") || "", 10);
    const askedQuarter = parseInt(params.get("quarter") || "", 10);
    const year = askedYear >= 1900 && askedYear <= 9999 ? askedYear : new Date().getUTCFullYear();
    const quarter = askedQuarter >= 1 && askedQuarter <= 4 ? askedQuarter : null;
    $("stats-year").value = String(year);
    $("stats-quarter").value = quarter ? String(quarter) : "";
    $("stats-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const y = parseInt($("stats-year").value, 10);
      const q = $("stats-quarter").value;
      if (y >= 1900 && y <= 9999) loadStats(y, q ? parseInt(q, 10) : null);
    });
    await loadNetwork();
    const wanted = params.get("cert");
    const tasks = [refreshBlocks(), loadStats(year, quarter)];
    if (wanted) tasks.push(lookup(wanted, false));
    await Promise.all(tasks);
    state.timer = setInterval(refreshBlocks, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
