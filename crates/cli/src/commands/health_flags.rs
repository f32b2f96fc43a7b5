//! The healthcheck flags of `create`/`run` (`--health-*`, `--no-healthcheck`) and the
//! `Healthcheck` they send, with the docker CLI's rules and texts. Knows nothing of the daemon.

use api_types::models::HealthConfig;
use clap::Args;

use crate::client::CliError;

/// The healthcheck flags (flattened into the container flags).
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct HealthOpts {
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub(crate) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-interval",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub(crate) health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(
        long = "health-retries",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub(crate) health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    /// (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-start-period",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub(crate) health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-start-interval",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub(crate) health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-timeout",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub(crate) health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub(crate) no_healthcheck: bool,
}

/// Go's `time.ParseDuration`, in nanoseconds (negative allowed).
fn go_duration_ns(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let secs = if rest == "0" {
        0.0
    } else {
        super::container::parse_go_duration(rest)?
    };
    let ns = (secs * 1e9).round();
    if !ns.is_finite() || ns > i64::MAX as f64 {
        return None;
    }
    let ns = ns as i64;
    Some(if neg { -ns } else { ns })
}

fn duration_flag(v: Option<&String>, flag: &str) -> Result<i64, CliError> {
    let Some(v) = v else { return Ok(0) };
    go_duration_ns(v).ok_or_else(|| {
        CliError::Usage(format!(
            "invalid argument \"{v}\" for \"{flag}\" flag: time: invalid duration \"{v}\""
        ))
    })
}

impl HealthOpts {
    /// The create body's `Healthcheck` (None when no flag was given), as the docker CLI's
    /// `parse` builds it.
    pub(crate) fn config(&self) -> Result<Option<HealthConfig>, CliError> {
        let interval = duration_flag(self.health_interval.as_ref(), "--health-interval")?;
        let timeout = duration_flag(self.health_timeout.as_ref(), "--health-timeout")?;
        let start_period =
            duration_flag(self.health_start_period.as_ref(), "--health-start-period")?;
        let start_interval = duration_flag(
            self.health_start_interval.as_ref(),
            "--health-start-interval",
        )?;
        let retries = self.health_retries.unwrap_or(0);
        let cmd = self.health_cmd.clone().unwrap_or_default();
        let have = !cmd.is_empty()
            || interval != 0
            || timeout != 0
            || start_period != 0
            || retries != 0
            || start_interval != 0;
        if self.no_healthcheck {
            if have {
                return Err(CliError::Usage(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }));
        }
        if !have {
            return Ok(None);
        }
        for (v, flag) in [
            (interval, "--health-interval"),
            (timeout, "--health-timeout"),
            (retries, "--health-retries"),
            (start_period, "--health-start-period"),
            (start_interval, "--health-start-interval"),
        ] {
            if v < 0 {
                return Err(CliError::Usage(format!("{flag} cannot be negative")));
            }
        }
        Ok(Some(HealthConfig {
            test: (!cmd.is_empty()).then(|| vec!["CMD-SHELL".into(), cmd]),
            interval: Some(interval),
            timeout: Some(timeout),
            start_period: Some(start_period),
            start_interval: Some(start_interval),
            retries: Some(retries),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_to_config() {
        assert_eq!(HealthOpts::default().config().unwrap(), None);
        let o = HealthOpts {
            health_cmd: Some("wget -q localhost".into()),
            health_interval: Some("300ms".into()),
            health_retries: Some(2),
            ..Default::default()
        };
        let c = o.config().unwrap().unwrap();
        assert_eq!(
            c.test.unwrap(),
            vec!["CMD-SHELL".to_string(), "wget -q localhost".to_string()]
        );
        assert_eq!(c.interval, Some(300_000_000));
        assert_eq!(c.timeout, Some(0));
        assert_eq!(c.retries, Some(2));
        // Only a setting: the test is inherited from the image.
        let o = HealthOpts {
            health_timeout: Some("1m30s".into()),
            ..Default::default()
        };
        let c = o.config().unwrap().unwrap();
        assert_eq!(c.test, None);
        assert_eq!(c.timeout, Some(90_000_000_000));
        let o = HealthOpts {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(o.config().unwrap().unwrap().test.unwrap(), vec!["NONE"]);
    }

    #[test]
    fn errors_like_docker() {
        let o = HealthOpts {
            no_healthcheck: true,
            health_cmd: Some("true".into()),
            ..Default::default()
        };
        assert_eq!(
            o.config().unwrap_err().to_string(),
            "--no-healthcheck conflicts with --health-* options"
        );
        let o = HealthOpts {
            health_interval: Some("-1s".into()),
            ..Default::default()
        };
        assert_eq!(
            o.config().unwrap_err().to_string(),
            "--health-interval cannot be negative"
        );
        let o = HealthOpts {
            health_interval: Some("soon".into()),
            ..Default::default()
        };
        assert!(
            o.config()
                .unwrap_err()
                .to_string()
                .contains("time: invalid duration \"soon\""),
        );
        assert_eq!(go_duration_ns("0"), Some(0));
        assert_eq!(go_duration_ns("1.5s"), Some(1_500_000_000));
    }
}
