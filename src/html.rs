//! HTML rewriting through workerd's native `HTMLRewriter` (streaming, no parser in our Wasm).

use cohort_core::Action;
use worker::wasm_bindgen::prelude::*;
use worker::{Response, web_sys};

#[wasm_bindgen(module = "/src/html_rewriter.js")]
extern "C" {
    #[wasm_bindgen(catch)]
    fn rewrite_html(
        response: web_sys::Response,
        actions_json: &str,
        assignments_json: Option<String>,
    ) -> Result<web_sys::Response, JsValue>;
}

/// Whether a response is HTML (only HTML is ever rewritten).
pub fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// Streams `response` through the edits, injecting the assignments script when given.
pub fn rewrite(response: Response, actions: &[Action], assignments_json: Option<String>) -> worker::Result<Response> {
    let actions_json = serde_json::to_string(actions)?;
    // `<` cannot appear raw inside the script element, or a value could close it early.
    let assignments_json = assignments_json.map(|json| json.replace('<', "\\u003c"));
    rewrite_html(response.into(), &actions_json, assignments_json)
        .map(Response::from)
        .map_err(|error| worker::Error::JsError(format!("HTMLRewriter: {error:?}")))
}
