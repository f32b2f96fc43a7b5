//! The distribution spec's error responses: `{"errors":[{"code","message","detail"}]}` with the
//! status code each error code carries. Knows nothing of storage or routing.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// One error answer of the registry API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) detail: Value,
    /// The `Range` header to send with a 416 (the upload's current state).
    pub(crate) range: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
            range: None,
        }
    }

    fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub(crate) fn name_invalid(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        )
        .with_detail(json!({ "name": name }))
    }

    pub(crate) fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
        .with_detail(json!({ "name": name }))
    }

    pub(crate) fn tag_invalid(tag: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            "manifest tag did not match URI",
        )
        .with_detail(json!({ "tag": tag }))
    }

    pub(crate) fn manifest_unknown(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        )
        .with_detail(json!({ "reference": reference }))
    }

    pub(crate) fn manifest_invalid(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
        )
        .with_detail(Value::String(why.into()))
    }

    pub(crate) fn manifest_blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .with_detail(json!({ "digest": digest }))
    }

    pub(crate) fn manifest_too_large(max: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("manifest is larger than {max} bytes"),
        )
    }

    pub(crate) fn blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .with_detail(json!({ "digest": digest }))
    }

    pub(crate) fn digest_invalid(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        )
        .with_detail(Value::String(why.into()))
    }

    pub(crate) fn size_invalid(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            "provided length did not match content length",
        )
        .with_detail(Value::String(why.into()))
    }

    pub(crate) fn upload_unknown(uuid: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
        .with_detail(json!({ "uuid": uuid }))
    }

    pub(crate) fn upload_invalid(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
        )
        .with_detail(Value::String(why.into()))
    }

    pub(crate) fn range_invalid(current: String) -> Self {
        let mut e = Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_INVALID",
            "invalid content range",
        );
        e.range = Some(current);
        e
    }

    pub(crate) fn too_many_uploads() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many uploads in progress",
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
    }

    pub(crate) fn unsupported() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "The operation is unsupported.",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "not found")
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("registry: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "unknown error",
        )
        .with_detail(Value::String(e.to_string()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": self.detail }]
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"berth-registry\""),
            );
        }
        if let Some(range) = self.range
            && let Ok(v) = HeaderValue::from_str(&range)
        {
            headers.insert(header::RANGE, v);
        }
        resp
    }
}

/// The result type of the request handlers.
pub(crate) type ApiResult<T = Response> = std::result::Result<T, ApiError>;
