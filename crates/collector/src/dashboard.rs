//! Serves the results dashboard's static files (www/dashboard) under `/dashboard/`: the copy
//! embedded in the binary at build time (build.rs), or, while working on the dashboard, the files
//! of a directory (`--dashboard-dir`). Only plain relative paths are served: no `..`, no absolute
//! or hidden paths, and nothing a symlink leads out of the directory to.

use cohort_core::wire::ErrorCode;
use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::error::ApiError;

/// Where the dashboard is served.
pub const DASHBOARD_PATH: &str = "/dashboard/";

/// Which dashboard files a collector serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dashboard {
    /// None: no dashboard routes.
    Off,
    /// The files embedded in this binary.
    Embedded,
    /// The files of this directory (a canonical path, resolved at startup), read per request.
    Directory(PathBuf),
}

include!(concat!(env!("OUT_DIR"), "/dashboard.rs"));

/// An embedded file by its path under `/dashboard/`.
fn embedded(relative: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .binary_search_by(|(path, _)| (*path).cmp(relative))
        .ok()
        .map(|found| EMBEDDED[found].1)
}

/// The dashboard talks only to this collector; nothing else may run in or frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn not_found(request: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no dashboard file `{request}`"),
    )
}

/// The relative path a request names (`index.html` for the directory), or why it may not be served.
fn checked(request: &str) -> Result<&str, ApiError> {
    let bad_path = |reason: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadPath,
            format!("dashboard path `{request}`: {reason}"),
        )
    };
    let relative = if request.is_empty() { "index.html" } else { request };
    if relative.contains('\\') || relative.contains('\0') {
        return Err(bad_path("backslashes and NUL are not allowed"));
    }
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => {}
            Component::Normal(_) => return Err(bad_path("hidden files are not served")),
            Component::ParentDir | Component::CurDir => return Err(bad_path("`.` and `..` are not allowed")),
            Component::RootDir | Component::Prefix(_) => return Err(bad_path("absolute paths are not allowed")),
        }
    }
    // `Path::components` drops a repeated or trailing `/`; a request like `vendor//x` is not
    // a file name anyone links to.
    if relative.split('/').any(str::is_empty) {
        return Err(bad_path("empty path segments are not allowed"));
    }
    Ok(relative)
}

/// The file a request path names inside `root`, or why it may not be served. `root` is
/// canonical (resolved at startup).
async fn resolve(root: &Path, request: &str) -> Result<PathBuf, ApiError> {
    let relative = checked(request)?;
    let canonical = tokio::fs::canonicalize(root.join(relative))
        .await
        .map_err(|_| not_found(request))?;
    if !canonical.starts_with(root) {
        tracing::warn!(request, "dashboard path leads outside the dashboard directory");
        return Err(not_found(request));
    }
    Ok(canonical)
}

async fn serve_file(state: &AppState, request: &str) -> Result<Response, ApiError> {
    let (body, path) = match &state.config.dashboard {
        Dashboard::Off => return Err(not_found(request)),
        Dashboard::Embedded => {
            let relative = checked(request)?;
            let body = embedded(relative).ok_or_else(|| not_found(request))?;
            (axum::body::Body::from(body), PathBuf::from(relative))
        }
        Dashboard::Directory(root) => {
            let path = resolve(root, request).await?;
            match tokio::fs::read(&path).await {
                Ok(body) => (axum::body::Body::from(body), path),
                // A directory (or a file gone since resolving) is not something to serve.
                Err(error) => {
                    tracing::debug!(%error, path = %path.display(), "dashboard file not readable");
                    return Err(not_found(request));
                }
            }
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    // The files change with every build; let the browser revalidate instead of guessing.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    Ok(response)
}

pub(crate) async fn index(State(state): State<AppState>) -> Result<Response, ApiError> {
    serve_file(&state, "").await
}

pub(crate) async fn file(State(state): State<AppState>, UrlPath(path): UrlPath<String>) -> Result<Response, ApiError> {
    serve_file(&state, &path).await
}

/// `/` and `/dashboard` lead to the dashboard, whose relative links need the trailing slash.
pub(crate) async fn redirect() -> Redirect {
    Redirect::temporary(DASHBOARD_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type(Path::new("index.html")), "text/html; charset=utf-8");
        assert_eq!(
            content_type(Path::new("vendor/uPlot.iife.min.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("vendor/uPlot.min.css")),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("LICENSE")), "application/octet-stream");
    }

    #[test]
    fn the_embedded_copy_is_the_dashboard_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/dashboard");
        for required in [
            "index.html",
            "app.js",
            "style.css",
            "vendor/uPlot.iife.min.js",
            "vendor/uPlot.min.css",
        ] {
            let on_disk = std::fs::read(root.join(required)).unwrap();
            assert_eq!(embedded(required), Some(on_disk.as_slice()), "{required}");
        }
        assert!(
            EMBEDDED.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "sorted for lookup"
        );
        assert_eq!(embedded("missing.js"), None);
        assert_eq!(embedded("vendor"), None, "directories are not files");
    }

    #[tokio::test]
    async fn only_plain_paths_inside_the_directory_resolve() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "no").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vendor")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(dir.path().join("vendor/a.js"), "1").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("link.txt")).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();

        assert_eq!(resolve(&root, "").await.unwrap(), root.join("index.html"));
        assert_eq!(resolve(&root, "vendor/a.js").await.unwrap(), root.join("vendor/a.js"));
        for (request, code) in [
            ("../secret.txt", ErrorCode::BadPath),
            ("vendor/../../secret.txt", ErrorCode::BadPath),
            ("./index.html", ErrorCode::BadPath),
            ("/etc/passwd", ErrorCode::BadPath),
            ("vendor//a.js", ErrorCode::BadPath),
            ("..\\secret.txt", ErrorCode::BadPath),
            (".git/config", ErrorCode::BadPath),
            ("missing.js", ErrorCode::NotFound),
            #[cfg(unix)]
            ("link.txt", ErrorCode::NotFound),
        ] {
            assert_eq!(
                resolve(&root, request).await.unwrap_err().detail.code,
                code,
                "{request}"
            );
        }
    }
}
