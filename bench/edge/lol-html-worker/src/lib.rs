//! Benchmark worker: fetch the origin, apply a fixed list of Cohort HTML actions, return.
//!
//! The action list comes from the `ACTIONS` text binding as cohort-core `Action` JSON, exactly what
//! the Cohort worker hands its rewriter, and is parsed on every request in both variants (the
//! Cohort worker also serialises the plan's actions per request). No KV, cookie or beacon: the only
//! difference between the two builds is who rewrites the HTML.
//! - default feature `lol`: lol_html compiled into this Wasm, streaming chunk by chunk; with the
//!   `LOL_BUFFERED` binding set it reads the whole body first and rewrites it in one call, which
//!   separates lol_html's own cost from the cost of streaming through JS ReadableStreams.
//! - feature `native`: workerd's native `HTMLRewriter` through the Cohort worker's own JS shim.
//!
//! With the `SKIP_REWRITE` binding set it returns the origin's response untouched: a Rust
//! pass-through, to tell the cost of a Rust/wasm-bindgen worker from the cost of rewriting.

use worker::{Env, Fetch, Request, RequestInit, RequestRedirect, Response, Result, Url, event};

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: worker::Context) -> Result<Response> {
    let origin = env.var("ORIGIN_OVERRIDE")?.to_string();
    let actions_json = env.var("ACTIONS")?.to_string();
    let url = request.url()?;
    let mut target = Url::parse(&origin).map_err(|e| worker::Error::RustError(e.to_string()))?;
    target.set_path(url.path());
    target.set_query(url.query());
    // Forward the visitor's headers like the Cohort worker's proxy() does.
    let headers = request.headers().clone();
    headers.set("x-forwarded-host", url.host_str().unwrap_or_default())?;
    let mut init = RequestInit::new();
    init.with_method(request.method())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    let response = Fetch::Request(Request::new_with_init(target.as_str(), &init)?)
        .send()
        .await?;
    let is_html = response
        .headers()
        .get("content-type")?
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if !is_html || env.var("SKIP_REWRITE").is_ok() {
        return Ok(response);
    }
    rewrite(response, &actions_json, env.var("LOL_BUFFERED").is_ok()).await
}

#[cfg(feature = "native")]
mod native {
    use worker::wasm_bindgen::prelude::*;
    use worker::web_sys;

    // The very module the Cohort worker binds in src/html.rs.
    #[wasm_bindgen(module = "/../../../src/html_rewriter.js")]
    extern "C" {
        #[wasm_bindgen(catch)]
        pub fn rewrite_html(
            response: web_sys::Response,
            actions_json: &str,
            assignments_json: Option<String>,
        ) -> Result<web_sys::Response, JsValue>;
    }
}

#[cfg(feature = "native")]
async fn rewrite(response: Response, actions_json: &str, _buffered: bool) -> Result<Response> {
    // Round-trip through the Action type so both variants do the same parse/validate work.
    let actions: Vec<cohort_core::Action> = serde_json::from_str(actions_json)?;
    let actions_json = serde_json::to_string(&actions)?;
    native::rewrite_html(response.into(), &actions_json, None)
        .map(Response::from)
        .map_err(|e| worker::Error::JsError(format!("HTMLRewriter: {e:?}")))
}

#[cfg(all(feature = "lol", not(feature = "native")))]
async fn rewrite(mut response: Response, actions_json: &str, buffered: bool) -> Result<Response> {
    use futures_util::StreamExt;
    use lol_html::{HtmlRewriter, Settings};

    use lol::Sink;

    let actions: Vec<cohort_core::Action> = serde_json::from_str(actions_json)?;
    let status = response.status_code();
    let headers = response.headers().clone();
    // The body changes length; workerd's HTMLRewriter drops it the same way.
    headers.delete("content-length")?;
    let mut settings = Settings::new();
    for action in actions {
        settings = lol::handler(settings, action)?;
    }
    let out = Sink::default();
    let rewriter = HtmlRewriter::new(settings, out.clone());
    if buffered {
        let body = response.bytes().await?;
        let mut rewriter = rewriter;
        rewriter
            .write(&body)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        rewriter.end().map_err(|e| worker::Error::RustError(e.to_string()))?;
        return Ok(Response::from_bytes(out.take())?
            .with_status(status)
            .with_headers(headers));
    }
    let input = response.stream()?;

    // lol_html pushes output into the sink; we drain it after every input chunk and hand it to the
    // response stream, so the page streams through chunk by chunk (never buffered whole).
    let body = futures_util::stream::unfold(Some((input, rewriter, out)), |state| async move {
        let (mut input, mut rewriter, out) = state?;
        loop {
            match input.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = rewriter.write(&chunk) {
                        return Some((Err(worker::Error::RustError(e.to_string())), None));
                    }
                    let ready = out.take();
                    if !ready.is_empty() {
                        return Some((Ok(ready), Some((input, rewriter, out))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    let result = rewriter.end().map_err(|e| worker::Error::RustError(e.to_string()));
                    let rest = out.take();
                    return Some((result.map(|()| rest), None));
                }
            }
        }
    });
    Ok(Response::from_stream(body)?.with_status(status).with_headers(headers))
}

#[cfg(all(feature = "lol", not(feature = "native")))]
mod lol {
    use std::borrow::Cow;

    use cohort_core::{Action, InsertPosition};
    use lol_html::html_content::{ContentType, Element};
    use lol_html::{ElementContentHandlers, HandlerResult, OutputSink, Selector, Settings};

    /// Where lol_html writes its output. One named type for both the streaming and the buffered
    /// path, so lol_html is compiled once (HtmlRewriter is generic over its sink).
    #[derive(Clone, Default)]
    pub struct Sink(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Sink {
        /// What has been written since the last take.
        pub fn take(&self) -> Vec<u8> {
            std::mem::take(&mut *self.0.borrow_mut())
        }
    }

    impl OutputSink for Sink {
        fn handle_chunk(&mut self, chunk: &[u8]) {
            self.0.borrow_mut().extend_from_slice(chunk);
        }
    }

    /// Adds one action's element handler; non-HTML actions (route, headers) are not ours here.
    pub fn handler<'h>(settings: Settings<'h, 'static>, action: Action) -> worker::Result<Settings<'h, 'static>> {
        let (selector, apply): (String, Box<dyn FnMut(&mut Element<'_, '_>) -> HandlerResult + 'h>) = match action {
            Action::SetText { selector, text } => (
                selector,
                // ContentType::Text escapes, as the config reference promises for set_text.
                Box::new(move |el| Ok(el.set_inner_content(&text, ContentType::Text))),
            ),
            Action::SetAttribute { selector, name, value } => {
                (selector, Box::new(move |el| Ok(el.set_attribute(&name, &value)?)))
            }
            Action::InsertHtml {
                selector,
                position,
                html,
            } => (
                selector,
                Box::new(move |el| {
                    match position {
                        InsertPosition::Before => el.before(&html, ContentType::Html),
                        InsertPosition::After => el.after(&html, ContentType::Html),
                        InsertPosition::Prepend => el.prepend(&html, ContentType::Html),
                        InsertPosition::Append => el.append(&html, ContentType::Html),
                        InsertPosition::Replace => el.set_inner_content(&html, ContentType::Html),
                    }
                    Ok(())
                }),
            ),
            Action::Remove { selector } => (selector, Box::new(|el| Ok(el.remove()))),
            _ => return Ok(settings),
        };
        let selector: Selector = selector
            .parse()
            .map_err(|e| worker::Error::RustError(format!("selector `{selector}`: {e}")))?;
        Ok(settings
            .append_element_content_handler((Cow::Owned(selector), ElementContentHandlers::default().element(apply))))
    }
}
