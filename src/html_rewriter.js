// @ts-check
// Applies a variant's HTML edits with workerd's native, streaming HTMLRewriter.
// The edits come from the engine (cohort-core's Action type, in the page plan of
// cohort_core::edge::origin); this file only maps them onto the runtime API, so all decisions stay
// in Rust.

/** `response` streamed through `actions`, with the assignments script when `assignmentsJson` is set. */
export function rewriteHtml(response, actions, assignmentsJson) {
  let rewriter = new HTMLRewriter();
  // Each `on()` costs a selector match and a JS callback per element, so consecutive actions on
  // the same selector share one handler (several experiments editing <body>); merging only
  // neighbours keeps the order in which edits apply exactly as listed.
  for (const run of consecutiveRuns(actions)) {
    rewriter = rewriter.on(run.selector, {
      element: (element) => {
        for (const action of run.actions) apply(element, action);
      },
    });
  }
  if (assignmentsJson !== undefined && assignmentsJson !== null) {
    // For pages that use the browser build: the visitor's assignments, readable without a request.
    const script = `<script type="application/json" id="cohort-assignments">${assignmentsJson}</script>`;
    rewriter = rewriter.on("head", {
      element: (head) => {
        head.append(script, { html: true });
      },
    });
  }
  return rewriter.transform(response);
}

/** The same, called from Rust with the actions as JSON (the rewriter comparison in bench/edge). */
export function rewrite_html(response, actionsJson, assignmentsJson) {
  return rewriteHtml(response, JSON.parse(actionsJson), assignmentsJson);
}

/** Whether a response is HTML: only HTML is ever rewritten. */
export function isHtml(response) {
  return (response.headers.get("content-type") ?? "").trimStart().toLowerCase().startsWith("text/html");
}

/** Groups neighbouring actions with the same selector: [{selector, actions}], in order. */
function consecutiveRuns(actions) {
  const runs = [];
  for (const action of actions) {
    const last = runs[runs.length - 1];
    if (last && last.selector === action.selector) last.actions.push(action);
    else runs.push({ selector: action.selector, actions: [action] });
  }
  return runs;
}

function apply(element, action) {
  switch (action.type) {
    case "set_text":
      element.setInnerContent(action.text);
      break;
    case "set_attribute":
      element.setAttribute(action.name, action.value);
      break;
    case "insert_html":
      switch (action.position) {
        case "before":
          element.before(action.html, { html: true });
          break;
        case "after":
          element.after(action.html, { html: true });
          break;
        case "prepend":
          element.prepend(action.html, { html: true });
          break;
        case "append":
          element.append(action.html, { html: true });
          break;
        case "replace":
          element.setInnerContent(action.html, { html: true });
          break;
      }
      break;
    case "remove":
      element.remove();
      break;
  }
}
