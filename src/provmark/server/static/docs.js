// The API documentation page: renders /openapi.json as a list of operations with their
// parameters, request body and responses. No libraries; text only (textContent).
"use strict";

(function () {
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function schemaText(s, spec) {
    if (!s) return "";
    if (s.$ref) return s.$ref.split("/").pop();
    if (s.anyOf) return s.anyOf.map((x) => schemaText(x, spec)).join(" | ");
    if (s.enum) return s.enum.map((x) => JSON.stringify(x)).join(" | ");
    let t = s.type || "";
    if (s.format) t += " (" + s.format + ")";
    const bounds = [];
    if (s.minimum !== undefined) bounds.push(">= " + s.minimum);
    if (s.exclusiveMaximum !== undefined) bounds.push("< " + s.exclusiveMaximum);
    if (s.maximum !== undefined) bounds.push("<= " + s.maximum);
    if (bounds.length) t += " " + bounds.join(", ");
    return t;
  }

  function render(spec) {
    const root = document.getElementById("ops");
    root.textContent = "";
    root.appendChild(el("p", "muted", spec.info.title + " " + spec.info.version + ": " + (spec.info.description || "")));
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const card = el("article", "card wide");
        const h = el("h2");
        h.appendChild(el("span", "pill none", method.toUpperCase()));
        h.appendChild(document.createTextNode(" " + path));
        card.appendChild(h);
        if (op.summary) card.appendChild(el("p", "", op.summary));
        if (op.description) card.appendChild(el("p", "muted", op.description));
        const params = op.parameters || [];
        if (params.length) {
          const t = el("table", "kv");
          for (const p of params) {
            const tr = el("tr");
            tr.appendChild(el("th", "mono", p.name + (p.required ? " *" : "")));
            const td = el("td");
            td.appendChild(el("div", "mono", schemaText(p.schema, spec)
              + (p.schema && p.schema.default !== undefined ? "  default " + JSON.stringify(p.schema.default) : "")));
            if (p.description) td.appendChild(el("div", "muted", p.description));
            tr.appendChild(td);
            t.appendChild(tr);
          }
          card.appendChild(el("h3", "", "Query parameters (* required)"));
          card.appendChild(t);
        }
        if (op.requestBody) {
          card.appendChild(el("h3", "", "Request body"));
          card.appendChild(el("p", "muted", (op.requestBody.description || "") + " Media types: "
            + Object.keys(op.requestBody.content).join(", ") + "."));
        }
        if (op.security) card.appendChild(el("p", "muted", "Header X-API-Key (see each response)."));
        const t = el("table", "kv");
        for (const [code, r] of Object.entries(op.responses || {})) {
          const tr = el("tr");
          tr.appendChild(el("th", "mono", code));
          const types = r.content ? Object.keys(r.content).join(", ") : "";
          tr.appendChild(el("td", "", r.description + (types ? " [" + types + "]" : "")));
          t.appendChild(tr);
        }
        card.appendChild(el("h3", "", "Responses"));
        card.appendChild(t);
        root.appendChild(card);
      }
    }
  }

  fetch("/openapi.json").then((r) => r.json()).then(render).catch((e) => {
    document.getElementById("ops").textContent = "Could not load /openapi.json: " + e.message;
  });
})();
