//! OpenAPI schemas of the types whose JSON form is written by hand (feature `openapi`, which
//! only the server turns on): the rest derive `utoipa::ToSchema` next to their serde derives.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::desired::{
    DESIRED_FORMAT, DesiredState, DesiredStateMessage, STATUS_FORMAT, StatusReport,
    StatusReportMessage,
};
use crate::rules::RuleId;

impl utoipa::PartialSchema for RuleId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "The id of a gateway rule, as written in the spec (`GW-7`).",
            ))
            .enum_values(Some(RuleId::ALL.iter().map(|r| r.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for RuleId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RuleId")
    }
}

/// `T`'s object schema with the `format` tag of an internally tagged message added (utoipa's
/// own rendering of `#[serde(tag)]` combines the tag with `T`'s closed object, which nothing
/// can satisfy).
fn tagged<T: utoipa::PartialSchema>(tag: &'static str, description: &'static str) -> RefOr<Schema> {
    let mut schema = T::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.properties.insert(
            "format".to_owned(),
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some([tag]))
                .into(),
        );
        object.required.insert(0, "format".to_owned());
        object.description = Some(description.to_owned());
    }
    schema
}

impl utoipa::PartialSchema for DesiredStateMessage {
    fn schema() -> RefOr<Schema> {
        tagged::<DesiredState>(
            DESIRED_FORMAT,
            "A worker's desired state, versioned by `format`.",
        )
    }
}

impl utoipa::ToSchema for DesiredStateMessage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DesiredStateMessage")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <DesiredState as utoipa::ToSchema>::schemas(schemas);
    }
}

impl utoipa::PartialSchema for StatusReportMessage {
    fn schema() -> RefOr<Schema> {
        tagged::<StatusReport>(
            STATUS_FORMAT,
            "A worker's status report, versioned by `format`.",
        )
    }
}

impl utoipa::ToSchema for StatusReportMessage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("StatusReportMessage")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <StatusReport as utoipa::ToSchema>::schemas(schemas);
    }
}
