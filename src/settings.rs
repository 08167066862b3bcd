//! The worker's environment bindings (`wrangler.toml` vars and secrets), read once per isolate:
//! they never change while an isolate lives. What they mean, their defaults and their validation
//! are [`cohort_core::edge::settings`]'s; `ORIGIN_OVERRIDE` is read by `src/entry.mjs`, which needs
//! it to fail open, and handed in with each request's facts.

use std::cell::RefCell;
use std::rc::Rc;

pub use cohort_core::edge::settings::Settings;
use worker::Env;

thread_local! {
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// The bindings, read on the first request of the isolate; an error names the variable.
pub fn settings(env: &Env) -> Result<Rc<Settings>, String> {
    if let Some(settings) = SETTINGS.with(|cell| cell.borrow().clone()) {
        return Ok(settings);
    }
    let settings = Rc::new(Settings::read(|name| {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .ok()
    })?);
    SETTINGS.with(|cell| *cell.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}
