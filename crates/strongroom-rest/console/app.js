// Strongroom console: a client of the REST API and nothing more. It holds the caller's
// bearer token in sessionStorage, sends it with every request, and renders what the API
// answers. The server decides every permission; the console only hides the controls a
// role may not use. Key material is never rendered: key details come from the metadata
// route, and imported material is wrapped in this page (WebCrypto) before it leaves it.
"use strict";

const SESSION = "strongroom.session";
const KEY_JSON = "application/vnd.ibm.kms.key+json";
const ACTION_JSON = "application/vnd.ibm.kms.key_action+json";
const STATES = { 0: "Pre-active", 1: "Active", 2: "Suspended", 3: "Deactivated", 5: "Destroyed" };
const main = document.getElementById("main");
const statusLine = document.getElementById("status");

let session = loadSession();

// ------------------------------------------------------------------ session and roles

function b64urlDecode(s) {
  const b = s.replace(/-/g, "+").replace(/_/g, "/");
  return atob(b.padEnd(Math.ceil(b.length / 4) * 4, "="));
}

/** The claims of a Strongroom token (for display; the server verifies the token). */
function claimsOf(token) {
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("This is not a Strongroom token.");
  const claims = JSON.parse(b64urlDecode(parts[1]));
  if (!claims.iid || !Array.isArray(claims.roles)) throw new Error("This token names no instance.");
  return claims;
}

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) || "null");
    if (s && s.token && s.claims && s.claims.exp * 1000 > Date.now()) return s;
  } catch (_) { /* a damaged entry is dropped below */ }
  sessionStorage.removeItem(SESSION);
  return null;
}

function startSession(token) {
  const claims = claimsOf(token);
  session = { token: token.trim(), claims };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
}

function logout(message) {
  session = null;
  sessionStorage.clear();
  if (message) say(message);
  if (location.hash !== "#/login") location.hash = "#/login"; else route();
}

/** Whether the session's roles grant `needed`, by the same rule as the server's. */
function can(needed) {
  const has = (r) => session && session.claims.roles.includes(r);
  switch (needed) {
    case "Reader": return has("Reader") || can("ReaderPlus");
    case "ReaderPlus": return has("ReaderPlus") || can("Writer");
    case "Writer": return has("Writer") || has("Manager");
    default: return has(needed);
  }
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** The reason an answer gives, in Key Protect's error envelope or IAM's. */
function reasonOf(json, status) {
  const res = json && Array.isArray(json.resources) ? json.resources[0] : null;
  if (res && res.errorMsg) {
    const reasons = (res.reasons || []).map((r) => r.message).filter(Boolean);
    return reasons.length ? `${res.errorMsg} — ${reasons.join("; ")}` : res.errorMsg;
  }
  if (json && json.errorMessage) return json.errorMessage;
  return `The server answered ${status}.`;
}

async function api(method, path, { query, body, type, auth = true, headers: extra = {} } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { ...extra };
  if (auth) {
    headers.Authorization = `Bearer ${session.token}`;
    headers["Bluemix-Instance"] = session.claims.iid;
  }
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = type || "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, { method, headers, body: payload, credentials: "omit", cache: "no-store" });
  } catch (_) {
    throw new ApiError(0, "The server cannot be reached.");
  }
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!r.ok) {
    if (r.status === 401 && auth) {
      logout("Your session has ended: log in again.");
    }
    throw new ApiError(r.status, reasonOf(json, r.status));
  }
  return { status: r.status, json, headers: r.headers };
}

function collection(resources, type = KEY_JSON) {
  return { metadata: { collectionType: type, collectionTotal: resources.length }, resources };
}

// ------------------------------------------------------------------ DOM helpers

/** Builds an element; strings become text nodes (never HTML). */
function el(tag, attrs, ...children) {
  const svg = ["svg", "rect", "text", "g", "line", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces the page's content (arrays flattened, empty parts dropped). */
function show(...children) {
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function say(message) {
  statusLine.textContent = message;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { statusLine.textContent = ""; }, 6000);
}

function errorBox(e) {
  return el("div", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e));
}

function date(s) {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace("Z", " UTC");
}

function table(headers, rows, caption, cls) {
  return el("div", { class: "table-wrap" },
    el("table", { class: cls },
      caption ? el("caption", { class: "muted" }, caption) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

function props(pairs) {
  return el("dl", { class: "props" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** A modal form. Resolves to the field values, or null when cancelled. */
function ask({ title, intro, fields = [], confirm = "OK", danger = false }) {
  return new Promise((resolve) => {
    const inputs = {};
    const form = el("form", { method: "dialog" },
      el("h2", { id: "dialog-title" }, title),
      intro ? el("p", {}, intro) : null,
      fields.map((f) => {
        const id = `f-${f.name}`;
        let input;
        if (f.type === "select") {
          input = el("select", { id, name: f.name }, f.options.map(([v, t]) => el("option", { value: v, selected: v === f.value }, t)));
        } else if (f.type === "checkbox") {
          input = el("input", { id, name: f.name, type: "checkbox", checked: f.value });
        } else {
          input = el("input", {
            id, name: f.name, type: f.type || "text", required: f.required, value: f.value,
            autocomplete: f.type === "password" ? "off" : undefined, spellcheck: "false",
            "aria-describedby": f.help ? `${id}-help` : undefined,
          });
        }
        inputs[f.name] = input;
        return el("div", { class: f.type === "checkbox" ? "inline" : "" },
          el("label", { for: id }, f.label), input,
          f.help ? el("p", { id: `${id}-help`, class: "muted" }, f.help) : null);
      }),
      el("div", { class: "actions" },
        el("button", { type: "submit", value: "ok", class: danger ? "danger" : "" }, confirm),
        el("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel")));
    const dialog = el("dialog", { "aria-labelledby": "dialog-title" }, form);
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const values = {};
      for (const [k, i] of Object.entries(inputs)) values[k] = i.type === "checkbox" ? i.checked : i.value;
      for (const i of Object.values(inputs)) i.value = ""; // no secret stays in the page
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? values : null);
    });
    dialog.showModal();
  });
}

/** Runs an action, shows its refusal (the API's reason) or its success, then re-renders. */
async function act(label, fn, after = route) {
  try {
    await fn();
    say(`${label}: done.`);
    await after();
  } catch (e) {
    say("");
    const box = errorBox(new Error(`${label} was refused: ${e.message}`));
    main.querySelector(".error")?.remove();
    main.querySelector("h1")?.after(box);
    box.setAttribute("tabindex", "-1");
    box.focus();
  }
}

// ------------------------------------------------------------------ secure import (WebCrypto)

function bytesOf(b64) {
  const s = atob(b64);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function b64Of(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

/** Fetches the instance's import token (creating one when there is none or it is used up). */
async function importToken() {
  try {
    return (await api("GET", "/api/v2/import_token")).json;
  } catch (e) {
    if (![404, 409, 410, 400].includes(e.status)) throw e;
  }
  await api("POST", "/api/v2/import_token", { body: { expiration: 600, maxAllowedRetrievals: 1 } });
  return (await api("GET", "/api/v2/import_token")).json;
}

/** Wraps key material for the instance, as Key Protect's secure import asks:
 *  RSA-OAEP-SHA-256 to the token's key, and the token's nonce sealed with AES-GCM under
 *  the material. The material itself never leaves this function unwrapped. */
async function sealMaterial(materialB64) {
  let material;
  try { material = bytesOf(materialB64.trim()); } catch (_) { throw new Error("The key material must be base64."); }
  if (![16, 24, 32].includes(material.length)) throw new Error("The key material must be 16, 24 or 32 bytes.");
  const token = await importToken();
  const pem = atob(token.payload);
  const der = bytesOf(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""));
  const rsa = await crypto.subtle.importKey("spki", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  const aes = await crypto.subtle.importKey("raw", material, "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const encryptedNonce = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, bytesOf(token.nonce));
  const payload = await crypto.subtle.encrypt({ name: "RSA-OAEP" }, rsa, material);
  material.fill(0);
  return {
    payload: b64Of(payload), encryptedNonce: b64Of(encryptedNonce), iv: b64Of(iv),
    encryptionAlgorithm: "RSAES_OAEP_SHA_256",
  };
}

const MATERIAL_FIELD = {
  name: "material", label: "Key material (base64)", type: "password", required: true,
  help: "16, 24 or 32 bytes. It is wrapped in this browser with the instance's import token before it is sent.",
};

// ------------------------------------------------------------------ pages

async function loginPage() {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").replaceChildren();
  const msg = el("div");
  const keyInput = el("input", { id: "apikey", type: "password", autocomplete: "off", required: true });
  const tokenInput = el("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const done = () => {
    keyInput.value = "";
    tokenInput.value = "";
    if (location.hash === "#/keys") route(); else location.hash = "#/keys";
  };
  const byKey = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const body = new URLSearchParams({ grant_type: "urn:ibm:params:oauth:grant-type:apikey", apikey: keyInput.value.trim() });
        const r = await api("POST", "/identity/token", { body: body.toString(), type: "application/x-www-form-urlencoded", auth: false });
        startSession(r.json.access_token);
        done();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    },
  }, el("fieldset", {}, el("legend", {}, "With an API key"),
    el("label", { for: "apikey" }, "API key"), keyInput,
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Log in"))));
  const byToken = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        startSession(tokenInput.value);
        await api("HEAD", "/api/v2/keys");
        done();
      } catch (e) {
        session = null;
        sessionStorage.removeItem(SESSION);
        msg.replaceChildren(errorBox(e));
      }
    },
  }, el("fieldset", {}, el("legend", {}, "With a token"),
    el("label", { for: "token" }, "Bearer token (dev mode prints one, and writes it to dev.json)"), tokenInput,
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Log in with token"))));
  show(el("div", { class: "login" },
    el("h1", {}, "Log in to Strongroom"), msg, byKey, byToken,
    el("p", { class: "muted" }, "The token stays in this tab's session storage and is cleared when you log out.")));
}

const keyQuery = { search: "", state: "1,2", ring: "", sort: "-creationDate", limit: 25, offset: 0, total: 0 };

async function keysPage() {
  const h1 = el("h1", {}, "Keys");
  const listBox = el("div", { "aria-live": "polite" });
  const search = el("input", { id: "search", type: "search", value: keyQuery.search, placeholder: "name, alias or id" });
  const state = el("select", { id: "state" },
    [["1,2", "Active and suspended"], ["1", "Active"], ["2", "Suspended"], ["3", "Deactivated"], ["5", "Destroyed"], ["0,1,2,3,5", "All"]]
      .map(([v, t]) => el("option", { value: v, selected: keyQuery.state === v }, t)));
  const sort = el("select", { id: "sort" },
    [["-creationDate", "Newest first"], ["creationDate", "Oldest first"], ["-lastUpdateDate", "Recently updated"],
      ["-lastRotateDate", "Recently rotated"], ["state", "State"], ["id", "Id"]]
      .map(([v, t]) => el("option", { value: v, selected: keyQuery.sort === v }, t)));
  const size = el("select", { id: "size" }, [10, 25, 50, 100].map((n) => el("option", { value: n, selected: keyQuery.limit === n }, n)));
  const rings = await api("GET", "/api/v2/key_rings", { query: { limit: 100 } }).then((r) => r.json.resources || [], () => []);
  const ring = el("select", { id: "ring" }, el("option", { value: "" }, "All rings"),
    rings.map((r) => el("option", { value: r.id, selected: keyQuery.ring === r.id }, r.id)));
  const reload = () => {
    keyQuery.search = search.value.trim();
    keyQuery.state = state.value;
    keyQuery.ring = ring.value;
    keyQuery.sort = sort.value;
    keyQuery.limit = Number(size.value);
    keyQuery.offset = 0;
    return loadKeys(listBox);
  };
  const toolbar = el("form", { class: "toolbar", role: "search", onsubmit: (ev) => { ev.preventDefault(); reload(); } },
    el("div", {}, el("label", { for: "search" }, "Search"), search),
    el("div", {}, el("label", { for: "state" }, "State"), state),
    el("div", {}, el("label", { for: "ring" }, "Key ring"), ring),
    el("div", {}, el("label", { for: "sort" }, "Sort"), sort),
    el("div", {}, el("label", { for: "size" }, "Per page"), size),
    el("div", {}, el("button", { type: "submit" }, "Apply")));
  for (const s of [state, ring, sort, size]) s.addEventListener("change", reload);
  const create = can("Writer")
    ? el("div", { class: "actions" }, el("button", { type: "button", onclick: createKey }, "Create key"),
      can("Manager") ? el("button", { type: "button", class: "secondary", onclick: importKey }, "Import root key") : null)
    : null;
  show(h1, create, toolbar, listBox);
  await loadKeys(listBox);
}

async function loadKeys(box) {
  try {
    await showKeys(box);
  } catch (e) {
    box.replaceChildren(errorBox(e));
  }
}

async function showKeys(box) {
  const q = keyQuery;
  const filters = { state: q.state, search: q.search };
  const headers = q.ring ? { "X-Kms-Key-Ring": q.ring } : {};
  // The count is a second request: a search over more than 5,000 keys cannot be counted,
  // and the page is still shown.
  const [r, count] = await Promise.all([
    api("GET", "/api/v2/keys", { query: { ...filters, limit: q.limit, offset: q.offset, sort: q.sort }, headers }),
    api("HEAD", "/api/v2/keys", { query: filters, headers }).then((c) => Number(c.headers.get("Key-Total")), () => null),
  ]);
  const keys = r.json.resources || [];
  const incomplete = r.json.metadata.incompleteSearch === true;
  q.total = count;
  const rows = keys.map((k) => el("tr", {},
    el("td", {}, el("a", { href: `#/keys/${encodeURIComponent(k.id)}` }, k.name || k.id)),
    el("td", {}, k.extractable ? "Standard" : "Root"),
    el("td", {}, STATES[k.state] ?? k.state),
    el("td", {}, date(k.creationDate)),
    el("td", {}, (k.aliases || []).join(", ")),
    el("td", { class: "mono" }, k.id)));
  const first = keys.length === 0 ? 0 : q.offset + 1;
  const last = q.offset + keys.length;
  const more = q.total === null || incomplete ? keys.length === q.limit : last < q.total;
  const prev = el("button", { type: "button", class: "secondary", disabled: q.offset === 0, onclick: () => { q.offset = Math.max(0, q.offset - q.limit); loadKeys(box); } }, "Previous page");
  const next = el("button", { type: "button", class: "secondary", disabled: !more, onclick: () => { q.offset += q.limit; loadKeys(box); } }, "Next page");
  box.replaceChildren(...[
    incomplete ? el("div", { class: "warning", role: "note" }, "The search looked through the first 5,000 keys only (Key Protect's limit); narrow the list by state or key ring to search the rest.") : null,
    keys.length ? table(["Name", "Type", "State", "Created", "Aliases", "Id"], rows, null, "keys") : el("p", { class: "muted" }, "No keys match."),
    el("div", { class: "actions" }, prev, next,
      el("span", { class: "muted", id: "range" }, q.total === null || incomplete ? `${first}–${last}` : `${first}–${last} of ${q.total}`)),
  ].filter(Boolean));
}

async function createKey() {
  const v = await ask({
    title: "Create a key",
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "description", label: "Description" },
      { name: "type", label: "Type", type: "select", value: "root", options: [["root", "Root key (never leaves Strongroom)"], ["standard", "Standard key"]] },
    ],
    confirm: "Create",
  });
  if (!v) return;
  await act("Create key", async () => {
    const res = { type: KEY_JSON, name: v.name, extractable: v.type === "standard" };
    if (v.description) res.description = v.description;
    const r = await api("POST", "/api/v2/keys", { body: collection([res]), type: KEY_JSON, query: {} });
    location.hash = `#/keys/${encodeURIComponent(r.json.resources[0].id)}`;
  }, async () => {});
}

async function importKey() {
  const v = await ask({
    title: "Import a root key",
    intro: "Secure import: the material is wrapped in this browser under the instance's import token (RSA-OAEP with SHA-256, nonce sealed with AES-GCM).",
    fields: [{ name: "name", label: "Name", required: true }, { name: "description", label: "Description" }, MATERIAL_FIELD],
    confirm: "Import",
  });
  if (!v) return;
  await act("Import key", async () => {
    const sealed = await sealMaterial(v.material);
    const res = { type: KEY_JSON, name: v.name, extractable: false, ...sealed };
    if (v.description) res.description = v.description;
    const r = await api("POST", "/api/v2/keys", { body: collection([res]), type: KEY_JSON });
    location.hash = `#/keys/${encodeURIComponent(r.json.resources[0].id)}`;
  }, async () => {});
}

async function keyPage(id) {
  const path = `/api/v2/keys/${encodeURIComponent(id)}`;
  const meta = (await api("GET", `${path}/metadata`)).json.resources[0];
  const [versions, policies, regs] = await Promise.all([
    api("GET", `${path}/versions`, { query: { allKeyStates: "true", totalCount: "true" } }).then((r) => r.json.resources || [], (e) => e),
    api("GET", `${path}/policies`).then((r) => r.json.resources || [], (e) => e),
    api("GET", `${path}/registrations`).then((r) => r.json.resources || [], (e) => e),
  ]);
  const dual = meta.dualAuthDelete && meta.dualAuthDelete.enabled;
  const destroyed = meta.state === 5;
  const buttons = [];
  const post = (action, body) => api("POST", `${path}/actions/${action}`, body ? { body, type: ACTION_JSON } : {});
  if (!destroyed && meta.state === 1 && can("Writer")) {
    buttons.push(el("button", {
      type: "button", onclick: async () => {
        if (meta.imported && !meta.extractable) {
          const v = await ask({ title: "Rotate an imported key", intro: "An imported root key rotates to new material you provide.", fields: [MATERIAL_FIELD], confirm: "Rotate" });
          if (v) await act("Rotate", async () => post("rotate", await sealMaterial(v.material)));
        } else {
          await act("Rotate", () => post("rotate"));
        }
      },
    }, "Rotate"));
  }
  if (can("Manager") && meta.state === 1) buttons.push(el("button", { type: "button", class: "secondary", onclick: () => act("Disable", () => post("disable")) }, "Disable"));
  if (can("Manager") && meta.state === 2) buttons.push(el("button", { type: "button", class: "secondary", onclick: () => act("Enable", () => post("enable")) }, "Enable"));
  if (can("Manager") && !destroyed && dual) {
    buttons.push(el("button", { type: "button", class: "secondary", onclick: () => act("Authorize deletion", () => post("setKeyForDeletion")) }, "Authorize deletion"));
    buttons.push(el("button", { type: "button", class: "secondary", onclick: () => act("Cancel deletion authorization", () => post("unsetKeyForDeletion")) }, "Cancel authorization"));
  }
  if (can("Manager") && !destroyed) {
    buttons.push(el("button", {
      type: "button", class: "danger", onclick: async () => {
        const v = await ask({
          title: "Delete this key",
          intro: `Data encrypted under "${meta.name}" becomes unreadable until the key is restored (within 30 days). ${dual ? "Dual authorization is on: another Manager must have authorized the deletion." : ""}`,
          fields: [{ name: "confirm", label: `Type the key's name (${meta.name}) to confirm`, required: true }],
          confirm: "Delete key", danger: true,
        });
        if (!v) return;
        if (v.confirm !== meta.name) { say("The name did not match; nothing was deleted."); return; }
        await act("Delete", () => api("DELETE", path));
      },
    }, "Delete"));
  }
  if (can("Manager") && destroyed) {
    buttons.push(el("button", {
      type: "button", onclick: async () => {
        if (meta.imported) {
          const v = await ask({ title: "Restore an imported key", intro: "Provide the key's material again; it is wrapped in this browser.", fields: [MATERIAL_FIELD], confirm: "Restore" });
          if (v) await act("Restore", async () => api("POST", `${path}/restore`, { body: collection([{ type: KEY_JSON, ...(await sealMaterial(v.material)) }]), type: KEY_JSON }));
        } else {
          await act("Restore", () => api("POST", `${path}/restore`, { body: collection([{ type: KEY_JSON }]), type: KEY_JSON }));
        }
      },
    }, "Restore"));
  }
  if (can("KeyPurge") && destroyed) {
    buttons.push(el("button", {
      type: "button", class: "danger", onclick: async () => {
        const v = await ask({ title: "Purge this key", intro: "Purging removes the key for good: it can never be restored.", fields: [{ name: "confirm", label: `Type the key's name (${meta.name}) to confirm`, required: true }], confirm: "Purge key", danger: true });
        if (v && v.confirm === meta.name) await act("Purge", () => api("DELETE", `${path}/purge`), async () => { location.hash = "#/keys"; });
        else if (v) say("The name did not match; nothing was purged.");
      },
    }, "Purge"));
  }
  const listOr = (x, render) => (x instanceof Error ? errorBox(x) : render(x));
  show(
    el("p", {}, el("a", { href: "#/keys" }, "← All keys")),
    el("h1", {}, meta.name || meta.id),
    buttons.length ? el("div", { class: "actions", "aria-label": "Key actions" }, buttons) : null,
    props([
      ["Id", el("span", { class: "mono" }, meta.id)],
      ["State", el("span", { id: "key-state" }, STATES[meta.state] ?? String(meta.state))],
      ["Type", meta.extractable ? "Standard key" : "Root key"],
      ["Algorithm", `${meta.algorithmType || "AES"} ${meta.algorithmBitSize || ""}`],
      ["Imported", meta.imported ? "Yes" : "No"],
      ["Key ring", meta.keyRingID || "default"],
      ["Aliases", (meta.aliases || []).join(", ") || "—"],
      ["Description", meta.description || "—"],
      ["Created", `${date(meta.creationDate)} by ${meta.createdBy || "—"}`],
      ["Last rotated", date(meta.lastRotateDate)],
      ["Deleted", meta.deleted ? `${date(meta.deletionDate)} by ${meta.deletedBy || "—"}` : "No"],
      ["Dual authorization", dual ? "Required for deletion" : "Off"],
    ]),
    el("h2", {}, "Versions"),
    listOr(versions, (vs) => table(["Version", "Created"], vs.map((v) => el("tr", {}, el("td", { class: "mono" }, v.id), el("td", {}, date(v.creationDate)))), `${vs.length} version${vs.length === 1 ? "" : "s"}`)),
    el("h2", {}, "Policies"),
    listOr(policies, (ps) => (ps.length ? props(ps.map((p) => policyLine(p))) : el("p", { class: "muted" }, "No key policies; the instance's policies apply."))),
    el("h2", {}, "Registrations"),
    listOr(regs, (rs) => (rs.length
      ? table(["Resource", "Prevents deletion", "Created"], rs.map((r) => el("tr", {}, el("td", { class: "mono" }, r.resourceCrn), el("td", {}, r.preventKeyDeletion ? "Yes" : "No"), el("td", {}, date(r.createdAt)))))
      : el("p", { class: "muted" }, "No resource uses this key."))),
    el("p", {}, el("a", { href: `#/activity?key=${encodeURIComponent(meta.id)}` }, "Activity of this key")));
}

function policyLine(p) {
  if (p.rotation) return ["Rotation", p.rotation.enabled === false ? "Off" : `Every ${p.rotation.interval_month} month(s)`];
  if (p.dualAuthDelete) return ["Dual authorization", p.dualAuthDelete.enabled ? "On" : "Off"];
  const name = Object.keys(p).find((k) => !["id", "crn", "type", "createdBy", "creationDate", "updatedBy", "lastUpdateDate"].includes(k));
  return [name || "Policy", JSON.stringify(p[name])];
}

function unitStatus(u) {
  const body = JSON.parse(atob(u.body));
  return { ...body.output, epoch: body.epoch, ctr: body.ctr };
}

function nextStep(units) {
  if (units.some((u) => u.mode === "imprint" && !u.dev)) return "Add administrators and set thresholds: strongroom tke cryptounit-admin-add, then strongroom tke cryptounit-thrhld-set (or strongroom tke auto-init).";
  if (units.some((u) => u.rotating)) return "A rotation is in progress: keys are being re-encrypted under the new master key. strongroom tke cryptounit-mk-rotate finishes it.";
  if (units.some((u) => u.new.state === "full_uncommitted")) return "The new master key is loaded: commit it with strongroom tke cryptounit-mk-commit.";
  if (units.some((u) => u.new.state === "full_committed")) {
    return units.some((u) => u.current.state === "empty")
      ? "The new master key is committed: make it current with strongroom tke cryptounit-mk-setimm."
      : "The new master key is committed: rotate to it with strongroom tke cryptounit-mk-rotate.";
  }
  if (units.some((u) => u.current.state === "empty")) return "No master key yet: load its parts with strongroom tke cryptounit-mk-load.";
  return "No ceremony step is pending.";
}

async function unitsPage() {
  const r = await api("GET", "/api/v2/crypto_units");
  const units = (r.json.units || []).map(unitStatus);
  const short = (vp) => (vp ? `${vp.slice(0, 16)}…` : "—");
  const reg = (x) => `${x.state.replace(/_/g, " ")}${x.vp ? ` (${short(x.vp)})` : ""}`;
  const warnings = [];
  for (const u of units) {
    if (u.dev) warnings.push(`Unit ${u.unit.slice(0, 8)} is a development unit: its master key is random and kept on this node's disk.`);
    else if (u.mode === "imprint") warnings.push(`Unit ${u.unit.slice(0, 8)} is in imprint mode: anyone with node access can administer it until thresholds are set.`);
    if (u.rotating) warnings.push(`Unit ${u.unit.slice(0, 8)}: a master key rotation is in progress.`);
  }
  const distinct = (f) => new Set(units.map(f)).size > 1;
  const operational = units.filter((u) => u.kind === "operational");
  if (operational.length > 1 && (new Set(operational.map((u) => u.current.vp)).size > 1 || new Set(operational.map((u) => u.new.vp)).size > 1)) {
    warnings.push("The operational units disagree on their master key registers.");
  }
  if (distinct((u) => `${u.signature_threshold}/${u.revocation_threshold}/${u.admins.map((a) => a.ski).sort().join()}`)) {
    warnings.push("The units do not all have the same administrators and thresholds.");
  }
  const rows = [
    ["Kind", (u) => u.kind],
    ["Mode", (u) => u.mode + (u.dev ? " (development)" : "")],
    ["Administrators", (u) => (u.admins.length ? u.admins.map((a) => a.name || a.ski.slice(0, 12)).join(", ") : "none")],
    ["Signature threshold", (u) => String(u.signature_threshold)],
    ["Revocation threshold", (u) => String(u.revocation_threshold)],
    ["Current master key", (u) => reg(u.current)],
    ["New master key", (u) => reg(u.new)],
    ["Rotating", (u) => (u.rotating ? "yes" : "no")],
    ["Trusted card zones", (u) => String((u.zones || []).length)],
  ];
  show(
    el("h1", {}, "Crypto units"),
    warnings.map((w) => el("div", { class: "warning", role: "note" }, w)),
    el("div", { class: "panel" }, el("strong", {}, "Next ceremony step: "), nextStep(units),
      el("p", { class: "muted" }, "The ceremony runs in the CLI, which signs each command with the administrators' keys.")),
    table(["", ...units.map((u) => el("span", { class: "mono" }, u.unit))],
      rows.map(([name, f]) => el("tr", {}, el("th", { scope: "row" }, name), units.map((u) => el("td", {}, f(u))))),
      `${units.length} unit${units.length === 1 ? "" : "s"}, side by side`));
}

function grep11Yaml(ep) {
  const host = location.hostname;
  const tokenspace = crypto.randomUUID();
  const publicSpace = crypto.randomUUID();
  return [
    "# grep11client.yaml for Strongroom's PKCS#11 library (IBM's format; docs/pkcs11.md).",
    "# The PIN is an API key of this instance. The user's tokenspaceID names its private keystore,",
    "# the anonymous user's the public one (public token objects, such as public keys).",
    "iamcredentialtemplate: &defaultiamcredential",
    "  enabled: true",
    `  endpoint: "${location.origin}"`,
    "  apikey:",
    `  instance: "${session.claims.iid}"`,
    "",
    "tokens:",
    "  0:",
    "    grep11connection:",
    `      address: "${host}"`,
    `      port: "${ep.port}"`,
    "      tls:",
    `        enabled: ${ep.tls ? "true" : "false"}`,
    ...(ep.tls ? ["        # cacert: /path/to/ca.pem   (when the server's certificate is from a private CA)"] : []),
    "    storage:",
    "      remotestore:",
    "        enabled: true",
    "    users:",
    "      0:",
    '        name: "Security officer"',
    "        iamauth: *defaultiamcredential",
    "      1:",
    '        name: "User"',
    `        tokenspaceID: "${tokenspace}"`,
    "        iamauth: *defaultiamcredential",
    "      2:",
    '        name: "Anonymous"',
    `        tokenspaceID: "${publicSpace}"`,
    "        iamauth: *defaultiamcredential",
    "logging:",
    "  loglevel: warning",
    "",
  ].join("\n");
}

async function integrationsPage() {
  const ep = (await api("GET", "/ui/endpoints.json", { auth: false })).json;
  const host = location.hostname;
  const sections = [el("h1", {}, "Integrations")];
  sections.push(el("h2", {}, "GREP11 and PKCS#11"));
  if (ep.grep11) {
    const yaml = grep11Yaml(ep.grep11);
    const url = URL.createObjectURL(new Blob([yaml], { type: "application/yaml" }));
    sections.push(props([
      ["GREP11 endpoint", el("span", { class: "mono" }, `${host}:${ep.grep11.port}`)],
      ["TLS", ep.grep11.tls ? "Yes" : "No (development)"],
      ["Instance", el("span", { class: "mono" }, session.claims.iid)],
      ["PKCS#11 library", "libstrongroom_pkcs11.so, configured by EP11CLIENT_CFG"],
    ]), el("div", { class: "actions" }, el("a", { class: "button", href: url, download: "grep11client.yaml" }, "Download grep11client.yaml")),
    el("pre", { class: "panel mono", "aria-label": "grep11client.yaml" }, yaml));
  } else {
    sections.push(el("p", { class: "muted" }, "This node has no GREP11 listener (serve --grpc-addr)."));
  }
  sections.push(el("h2", {}, "KMIP"));
  sections.push(ep.kmip ? props([["KMIP endpoint", el("span", { class: "mono" }, `${host}:${ep.kmip.port}`)], ["Authentication", "Mutual TLS with an adapter's client certificate"]])
    : el("p", { class: "muted" }, "This node has no KMIP listener."));
  try {
    const adapters = (await api("GET", "/api/v2/kmip_adapters")).json.resources || [];
    const rows = await Promise.all(adapters.map(async (a) => {
      let certs;
      try { certs = (await api("GET", `/api/v2/kmip_adapters/${a.id}/certificates`)).json.resources || []; } catch (e) { certs = e; }
      return el("tr", {}, el("td", {}, a.name), el("td", {}, a.profile), el("td", { class: "mono" }, (a.profile_data || {}).crk_id || "—"),
        el("td", {}, certs instanceof Error ? certs.message : (certs.length ? certs.map((c) => c.name || c.id).join(", ") : "none")),
        el("td", {}, date(a.created_at)));
    }));
    sections.push(adapters.length ? table(["Adapter", "Profile", "Root key", "Client certificates", "Created"], rows) : el("p", { class: "muted" }, "No KMIP adapters."));
  } catch (e) { sections.push(errorBox(e)); }
  show(...sections);
}

function hashQuery() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : location.hash.slice(i + 1));
}

async function activityPage() {
  const q = hashQuery();
  const since = q.get("since") || "86400";
  const f = {
    since: el("select", { id: "since", name: "since" }, [["3600", "Last hour"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"], ["2592000", "Last 30 days"]].map(([v, t]) => el("option", { value: v, selected: v === since }, t))),
    outcome: el("select", { id: "outcome", name: "outcome" }, [["", "Any"], ["success", "Success"], ["failure", "Failure"]].map(([v, t]) => el("option", { value: v, selected: v === (q.get("outcome") || "") }, t))),
    action: el("input", { id: "action", name: "action", value: q.get("action") || "", placeholder: "kms.secrets.create" }),
    key: el("input", { id: "key", name: "key", value: q.get("key") || "", placeholder: "key id" }),
  };
  const form = el("form", {
    class: "toolbar", onsubmit: (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      for (const [k, i] of Object.entries(f)) if (i.value) p.set(k, i.value);
      location.hash = `#/activity?${p}`;
    },
  },
  el("div", {}, el("label", { for: "since" }, "Period"), f.since),
  el("div", {}, el("label", { for: "outcome" }, "Outcome"), f.outcome),
  el("div", {}, el("label", { for: "action" }, "Action"), f.action),
  el("div", {}, el("label", { for: "key" }, "Key"), f.key),
  el("div", {}, el("button", { type: "submit" }, "Filter")));
  const from = new Date(Date.now() - Number(since) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const events = [];
  let after = 0;
  let truncated = false;
  for (let page = 0; ; page++) {
    const r = await api("GET", "/api/v2/activity_events", {
      query: { limit: 1000, after: after || undefined, from, outcome: q.get("outcome"), action: q.get("action"), key: q.get("key") },
    });
    const got = r.json.resources || [];
    events.push(...got);
    if (!r.json.metadata.next || got.length < 1000) break;
    if (page === 4) { truncated = true; break; }
    after = r.json.metadata.next;
  }
  events.reverse();
  const shown = events.slice(0, 500);
  const rows = shown.map((e) => el("tr", {},
    el("td", {}, date(e.eventTime)), el("td", { class: "mono" }, e.action),
    el("td", { class: e.outcome === "success" ? "ok" : "" }, e.outcome),
    el("td", {}, e.initiator ? e.initiator.id : "—"),
    el("td", { class: "mono" }, e.target ? e.target.id : "—"),
    el("td", {}, e.reason ? `${e.reason.reasonCode} ${e.reason.reasonType}` : "—")));
  show(el("h1", {}, "Activity"), form,
    events.length ? table(["Time", "Action", "Outcome", "By", "Target", "Reason"], rows,
      `${events.length}${truncated ? "+" : ""} events, newest first${shown.length < events.length ? `; the newest ${shown.length} shown` : ""}`)
      : el("p", { class: "muted" }, "No events match."));
}

function monthsBack(n) {
  const out = [];
  const d = new Date();
  for (let i = n - 1; i >= 0; i--) {
    const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 1));
    out.push(m.toISOString().slice(0, 7));
  }
  return out;
}

function barChart(title, items) {
  const w = 640, barH = 26, gap = 8, label = 170, h = items.length * (barH + gap) + 10;
  const max = Math.max(1, ...items.map(([, v]) => v));
  return el("figure", { class: "chart" },
    el("figcaption", {}, title),
    el("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img", "aria-label": `${title}: ${items.map(([k, v]) => `${k} ${v}`).join(", ")}` },
      items.map(([k, v], i) => {
        const y = 5 + i * (barH + gap);
        const bw = Math.max(1, Math.round(((w - label - 80) * v) / max));
        return el("g", {},
          el("text", { x: 0, y: y + 17 }, k),
          el("rect", { class: "bar", x: label, y, width: bw, height: barH, rx: 3 }),
          el("text", { x: label + bw + 6, y: y + 17 }, String(v)));
      })));
}

async function usagePage() {
  const months = monthsBack(6);
  const usage = await Promise.all(months.map((m) => api("GET", "/api/v2/instance/usage", { query: { month: m } }).then((r) => r.json)));
  const current = usage[usage.length - 1];
  show(el("h1", {}, "Usage"),
    el("p", { class: "muted" }, "API calls of this instance per calendar month (UTC), allowed or refused, counted from the audit log."),
    barChart("API calls per month", usage.map((u) => [u.month, u.api_calls])),
    el("h2", {}, `Crypto units, ${current.month}`),
    (current.crypto_units || []).length
      ? barChart(`Calls served per crypto unit in ${current.month}`, current.crypto_units.map((u) => [u.unit.slice(0, 8), u.api_calls]))
      : el("p", { class: "muted" }, "No crypto unit has served a call this month."),
    table(["Month", "API calls"], usage.map((u) => el("tr", {}, el("td", {}, u.month), el("td", {}, String(u.api_calls))))));
}

async function backupsPage() {
  const b = (await api("GET", "/api/v2/instance/backups")).json;
  const rows = b.backups.map((a) => el("tr", {},
    el("td", { class: "mono" }, a.name), el("td", {}, date(a.creationDate)),
    el("td", {}, a.scope === "node" ? "Whole node" : "This instance only")));
  show(el("h1", {}, "Backups"),
    b.configured
      ? props([["Last scheduled backup (this node)", b.lastScheduledBackup ? date(b.lastScheduledBackup) : "Not yet: the first runs a minute after start-up, then daily"],
        ["Newest archive", b.backups.length ? date(b.backups[0].creationDate) : "None"]])
      : el("div", { class: "warning", role: "note" }, "This node writes no scheduled backups: start it with --backup-dir (a directory or s3://bucket/prefix)."),
    el("h2", {}, "Archives holding this instance"),
    rows.length ? table(["Archive", "Written", "Holds"], rows, `${rows.length} archive${rows.length === 1 ? "" : "s"}, newest first`)
      : el("p", { class: "muted" }, "No archive yet."),
    el("p", { class: "muted" }, "Restoring is an operator's task: strongroom backup restore (docs/runbooks/backup-restore.md)."));
}

// ------------------------------------------------------------------ routing

const ROUTES = [
  [/^#\/keys\/?$/, keysPage],
  [/^#\/keys\/([^/?]+)$/, (id) => keyPage(decodeURIComponent(id))],
  [/^#\/units$/, unitsPage],
  [/^#\/integrations$/, integrationsPage],
  [/^#\/activity(\?.*)?$/, activityPage],
  [/^#\/usage$/, usagePage],
  [/^#\/backups$/, backupsPage],
];

function header() {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  const page = (location.hash.match(/^#\/(\w+)/) || [])[1];
  for (const a of nav.querySelectorAll("a")) {
    a.parentElement.hidden = a.dataset.role ? !can(a.dataset.role) : false;
    if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const c = session.claims;
  document.getElementById("who").replaceChildren(
    el("span", {}, `${c.sub} · ${c.roles.join(", ")}`),
    el("span", { class: "mono", title: "Instance" }, c.iid.slice(0, 8)),
    el("button", { type: "button", class: "secondary", id: "logout", onclick: () => logout("You are logged out.") }, "Log out"));
}

async function route() {
  session = session && loadSession();
  if (!session) return loginPage();
  if (!location.hash || location.hash === "#/login" || location.hash === "#/") {
    location.hash = "#/keys";
    return;
  }
  header();
  const hash = location.hash;
  const match = ROUTES.map(([re, page]) => [hash.match(re), page]).find(([m]) => m);
  show(el("p", { class: "muted" }, "Loading…"));
  try {
    if (!match) throw new Error("There is no such page.");
    await match[1](...match[0].slice(1));
    document.title = `${main.querySelector("h1")?.textContent || "Console"} · Strongroom`;
  } catch (e) {
    if (!session) return;
    show(el("h1", {}, "Something went wrong"), errorBox(e));
  }
}

window.addEventListener("hashchange", route);
route();
