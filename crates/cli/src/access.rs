//! `cohort token` and `cohort preview-link`: credentials derived from the platform secret.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use cohort_core::MasterSecret;
use cohort_core::preview::Preview;

/// Arguments of `cohort token`.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// Print an admin token (it changes the tenant's config) for this holder instead of the read
    /// token: a person's e-mail address or a system's name, recorded as the author of every
    /// change made with it.
    #[arg(long, value_name = "LABEL")]
    admin: Option<String>,
    /// Platform master secret.
    #[arg(long, env = "COHORT_SECRET", hide_env_values = true)]
    secret: String,
}

/// Arguments of `cohort preview-link`.
#[derive(clap::Args)]
pub struct PreviewLinkArgs {
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// Variant to force, `experiment=variant`. Repeatable; at least one.
    #[arg(long = "force", value_name = "EXPERIMENT=VARIANT", required = true)]
    forced: Vec<String>,
    /// How long the link works: seconds, or a number with s, m, h or d (at most 30d).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Page to link to; without it only the token is printed.
    #[arg(long)]
    url: Option<String>,
    /// Tenant config to check the experiments and variants against.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Platform master secret.
    #[arg(long, env = "COHORT_SECRET", hide_env_values = true)]
    secret: String,
}

const MAX_TTL_SECONDS: i64 = 30 * 24 * 3600;

fn secret(text: &str) -> Result<MasterSecret, String> {
    MasterSecret::new(text.as_bytes().to_vec()).map_err(|e| format!("--secret / COHORT_SECRET: {e}"))
}

fn check_tenant(tenant: &str) -> Result<(), String> {
    match cohort_core::tenant_id_problem(tenant) {
        Some(reason) => Err(format!("--tenant: {reason}")),
        None => Ok(()),
    }
}

/// Parses `90`, `90s`, `15m`, `1h`, `7d` into seconds.
fn parse_ttl(text: &str) -> Result<i64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl `{text}`: use seconds or a number with s, m, h or d")),
    };
    let seconds = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&s| s > 0);
    match seconds {
        Some(seconds) if seconds <= MAX_TTL_SECONDS => Ok(seconds),
        Some(_) => Err(format!(
            "--ttl `{text}` is longer than 30 days; preview links are short-lived"
        )),
        None => Err(format!(
            "--ttl `{text}`: expected a positive duration such as 90s, 15m, 1h or 7d"
        )),
    }
}

/// `cohort token`: the tenant's bearer token for the results API.
pub fn token(args: &TokenArgs) -> Result<ExitCode, String> {
    check_tenant(&args.tenant)?;
    let secret = secret(&args.secret)?;
    let token = match &args.admin {
        None => secret.results_read_token(&args.tenant),
        Some(label) => secret.config_admin_token(&args.tenant, label).ok_or_else(|| {
            format!(
                "--admin `{label}`: expected 1 to {} letters, digits, `.`, `_`, `-` or `@`",
                cohort_core::secrets::MAX_ADMIN_LABEL_LEN
            )
        })?,
    };
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `cohort preview-link`: a signed, expiring QA link that forces variants at the edge.
pub fn preview_link(args: &PreviewLinkArgs) -> Result<ExitCode, String> {
    check_tenant(&args.tenant)?;
    let ttl = parse_ttl(&args.ttl)?;
    let mut forced = BTreeMap::new();
    for pair in &args.forced {
        let (experiment, variant) = super::parse_pair("--force", pair)?;
        forced.insert(experiment.to_owned(), variant.to_owned());
    }
    if let Some(path) = &args.config {
        let tenant = super::load_tenant(path)?;
        if tenant.id != args.tenant {
            return Err(format!(
                "{}: is tenant `{}`, not `{}`",
                path.display(),
                tenant.id,
                args.tenant
            ));
        }
        for (experiment, variant) in &forced {
            let found = tenant
                .experiment(experiment)
                .ok_or_else(|| format!("--force {experiment}={variant}: no experiment `{experiment}`"))?;
            found
                .variant_index(variant)
                .ok_or_else(|| format!("--force {experiment}={variant}: `{experiment}` has no variant `{variant}`"))?;
        }
    }
    let expires = super::now_ms() / 1000 + ttl;
    let preview = Preview {
        tenant: args.tenant.clone(),
        expires,
        forced,
    };
    let token = preview.sign(&secret(&args.secret)?.preview_key(&args.tenant));
    match &args.url {
        None => println!("{token}"),
        Some(url) => {
            let (base, fragment) = url.split_once('#').map_or((url.as_str(), None), |(b, f)| (b, Some(f)));
            let separator = if base.contains('?') { '&' } else { '?' };
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            println!(
                "{base}{separator}{}={token}{fragment}",
                cohort_core::edge::PREVIEW_PARAM
            );
        }
    }
    eprintln!("expires {}", cohort_core::time::format_rfc3339(expires * 1000));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_with_units_and_limits() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("31d").unwrap_err().contains("longer than 30 days"));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
