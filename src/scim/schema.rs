//! The schemas served at `/Schemas` (RFC 7643 s7, s8.7.1) and used to check every resource
//! written and every filter, sort and projection read: the core User and Group schemas, the
//! enterprise User extension (RFC 7643 s4.3), and tongzheng's directory extensions (a person's
//! memberships with titles and order; an organization's place in the tree).

use serde_json::{Value, json};

/// Core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// tongzheng's User extension: memberships, identity document (masked), assurance level.
pub const TZ_USER: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:User";
/// tongzheng's Group extension: the organization tree.
pub const TZ_GROUP: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:Group";
/// List responses.
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Errors.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// PATCH requests.
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Search requests.
pub const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Bulk requests.
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Bulk responses.
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// An attribute's data type (RFC 7643 s2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// string
    Str,
    /// boolean
    Bool,
    /// integer
    Int,
    /// dateTime
    DateTime,
    /// reference
    Ref,
    /// binary
    Binary,
    /// complex
    Complex,
}

/// Mutability (RFC 7643 s2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// readOnly
    ReadOnly,
    /// readWrite
    ReadWrite,
    /// immutable
    Immutable,
    /// writeOnly
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 s2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// always
    Always,
    /// never
    Never,
    /// default
    Default,
    /// request
    Request,
}

/// One attribute definition.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Name as spelled on the wire.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Multi-valued.
    pub multi: bool,
    /// Required.
    pub required: bool,
    /// Case-exact comparisons.
    pub case_exact: bool,
    /// Mutability.
    pub mutability: Mutability,
    /// Returned.
    pub returned: Returned,
    /// Unique on the server.
    pub unique: bool,
    /// Suggested values.
    pub canonical: &'static [&'static str],
    /// Sub-attributes of a complex attribute.
    pub sub: &'static [Attr],
    /// What it is.
    pub description: &'static str,
}

const fn a(name: &'static str, ty: Ty, description: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        canonical: &[],
        sub: &[],
        description,
    }
}
const fn multi(mut x: Attr) -> Attr {
    x.multi = true;
    x
}
const fn req(mut x: Attr) -> Attr {
    x.required = true;
    x
}
const fn ro(mut x: Attr) -> Attr {
    x.mutability = Mutability::ReadOnly;
    x
}
const fn exact(mut x: Attr) -> Attr {
    x.case_exact = true;
    x
}
const fn complex(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
    let mut x = a(name, Ty::Complex, description);
    x.sub = sub;
    x
}
const fn canon(mut x: Attr, values: &'static [&'static str]) -> Attr {
    x.canonical = values;
    x
}

const NAME_SUB: &[Attr] = &[
    a("formatted", Ty::Str, "The full name, formatted for display."),
    a("familyName", Ty::Str, "The family name (姓)."),
    a("givenName", Ty::Str, "The given name (名)."),
    a("middleName", Ty::Str, "The middle name(s)."),
    a("honorificPrefix", Ty::Str, "Honorific prefix."),
    a("honorificSuffix", Ty::Str, "Honorific suffix."),
];

const fn plural(types: &'static [&'static str], value: Ty) -> [Attr; 4] {
    [
        a("value", value, "The value."),
        a("display", Ty::Str, "A human-readable name."),
        canon(a("type", Ty::Str, "A label for the value's function."), types),
        a("primary", Ty::Bool, "Whether this is the primary value (at most one)."),
    ]
}
const EMAILS: &[Attr] = &plural(&["work", "home", "other"], Ty::Str);
const PHONES: &[Attr] = &plural(&["work", "home", "mobile", "fax", "pager", "other"], Ty::Str);
const IMS: &[Attr] = &plural(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "youtube"], Ty::Str);
const PHOTOS: &[Attr] = &plural(&["photo", "thumbnail"], Ty::Ref);
const PLAIN: &[Attr] = &plural(&[], Ty::Str);
const CERTS: &[Attr] = &plural(&[], Ty::Binary);
const ADDRESSES: &[Attr] = &[
    a("formatted", Ty::Str, "The full mailing address."),
    a("streetAddress", Ty::Str, "Street address."),
    a("locality", Ty::Str, "City or locality."),
    a("region", Ty::Str, "State or region."),
    a("postalCode", Ty::Str, "Postal code."),
    a("country", Ty::Str, "Country (ISO 3166-1 alpha-2)."),
    canon(a("type", Ty::Str, "work, home or other."), &["work", "home", "other"]),
    a("primary", Ty::Bool, "Whether this is the primary address."),
];
const GROUPS_SUB: &[Attr] = &[
    ro(exact(a("value", Ty::Str, "The organization's id."))),
    ro(a("$ref", Ty::Ref, "The organization's URI.")),
    ro(a("display", Ty::Str, "The organization's name.")),
    ro(canon(a("type", Ty::Str, "direct or indirect."), &["direct", "indirect"])),
];

/// The core User schema's attributes (RFC 7643 s4.1).
pub const USER_ATTRS: &[Attr] = &[
    {
        let mut x = req(a(
            "userName",
            Ty::Str,
            "Unique login name (1-64 letters, digits, '.', '_', '-', '@'); set at creation.",
        ));
        x.unique = true;
        x.mutability = Mutability::Immutable;
        x
    },
    complex("name", NAME_SUB, "The components of the person's real name."),
    a("displayName", Ty::Str, "The name shown for the person."),
    a("nickName", Ty::Str, "The casual name."),
    a("profileUrl", Ty::Ref, "A URI of the person's online profile."),
    a("title", Ty::Str, "The person's title."),
    a("userType", Ty::Str, "The relationship to the organization (Employee, Contractor...)."),
    a("preferredLanguage", Ty::Str, "Preferred language (RFC 7231 Accept-Language)."),
    a("locale", Ty::Str, "Default location for localizing (e.g. zh-CN)."),
    a("timezone", Ty::Str, "Time zone (IANA, e.g. Asia/Shanghai)."),
    a("active", Ty::Bool, "Whether the account may log in."),
    {
        let mut x = a("password", Ty::Str, "Sets the password (at least 8 characters); never returned.");
        x.mutability = Mutability::WriteOnly;
        x.returned = Returned::Never;
        x
    },
    multi(complex("emails", EMAILS, "E-mail addresses; the primary one is the e-mail claim.")),
    multi(complex(
        "phoneNumbers",
        PHONES,
        "Phone numbers, stored sealed (SH-8.2); returned masked unless the caller holds the directory sensitive scope.",
    )),
    multi(complex("ims", IMS, "Instant messaging addresses.")),
    multi(complex("photos", PHOTOS, "URLs of photos.")),
    multi(complex("addresses", ADDRESSES, "Physical mailing addresses.")),
    ro(multi(complex(
        "groups",
        GROUPS_SUB,
        "The organizations the person belongs to (set them through memberships or Group members).",
    ))),
    multi(complex("entitlements", PLAIN, "Entitlements.")),
    multi(complex("roles", PLAIN, "Roles.")),
    multi(complex("x509Certificates", CERTS, "X.509 certificates (DER, base64).")),
];

const MANAGER_SUB: &[Attr] = &[
    exact(a("value", Ty::Str, "The manager's id.")),
    a("$ref", Ty::Ref, "The manager's URI."),
    ro(a("displayName", Ty::Str, "The manager's name.")),
];

/// The enterprise User extension's attributes (RFC 7643 s4.3).
pub const ENTERPRISE_ATTRS: &[Attr] = &[
    a("employeeNumber", Ty::Str, "Employee number."),
    a("costCenter", Ty::Str, "Cost center."),
    a("organization", Ty::Str, "Organization."),
    a("division", Ty::Str, "Division."),
    a("department", Ty::Str, "Department."),
    complex("manager", MANAGER_SUB, "The person's manager."),
];

const MEMBERSHIP_SUB: &[Attr] = &[
    req(exact(a("value", Ty::Str, "The organization's id."))),
    ro(a("display", Ty::Str, "The organization's name.")),
    a("title", Ty::Str, "Position or title in that organization (职务)."),
    a("order", Ty::Int, "Order among that organization's people (smaller first)."),
];

/// tongzheng's User extension.
pub const TZ_USER_ATTRS: &[Attr] = &[
    multi(complex("memberships", MEMBERSHIP_SUB, "The organizations the person belongs to, with title and order.")),
    ro(canon(
        a("idType", Ty::Str, "Identity document type."),
        &["resident_id", "passport", "hk_macao_permit", "taiwan_permit", "foreign_permanent_resident"],
    )),
    ro(a(
        "idNumber",
        Ty::Str,
        "Identity document number: masked unless the caller holds the directory sensitive scope.",
    )),
    ro(canon(
        a("assuranceLevel", Ty::Str, "How well the person is known."),
        &["visitor", "registered", "real_name", "strong"],
    )),
];

const MEMBERS_SUB: &[Attr] = &[
    {
        let mut x = req(exact(a("value", Ty::Str, "The person's id.")));
        x.mutability = Mutability::Immutable;
        x
    },
    {
        let mut x = a("$ref", Ty::Ref, "The person's URI.");
        x.mutability = Mutability::Immutable;
        x
    },
    ro(a("display", Ty::Str, "The person's name.")),
    {
        let mut x = canon(
            a("type", Ty::Str, "User (organizations nest through the tree extension, not as members)."),
            &["User"],
        );
        x.mutability = Mutability::Immutable;
        x
    },
];

/// The core Group schema's attributes (RFC 7643 s4.2): an organization.
pub const GROUP_ATTRS: &[Attr] = &[
    req(a("displayName", Ty::Str, "The organization's name.")),
    multi(complex("members", MEMBERS_SUB, "The people directly in the organization.")),
];

/// tongzheng's Group extension: the organization tree.
pub const TZ_GROUP_ATTRS: &[Attr] = &[
    exact(a("parent", Ty::Str, "The parent organization's id; absent for a root. Changing it moves the subtree.")),
    a("code", Ty::Str, "Code: the unit's unified social credit code or an internal code; unique."),
    canon(a("kind", Ty::Str, "What the organization is."), &["unit", "department", "group", "other"]),
    a("order", Ty::Int, "Order among its siblings (smaller first)."),
    canon(a("status", Ty::Str, "Whether the organization is in use."), &["active", "inactive"]),
    ro(exact(multi(a("ancestors", Ty::Str, "The ancestors' ids, root first.")))),
];

/// Attributes every resource has (RFC 7643 s3.1).
pub const COMMON: &[Attr] = &[
    ro(exact({
        let mut x = a("id", Ty::Str, "Unique identifier, assigned by the service provider.");
        x.returned = Returned::Always;
        x
    })),
    exact(a("externalId", Ty::Str, "Identifier in the provisioning client's system.")),
    ro(complex("meta", META_SUB, "Resource metadata.")),
    ro(exact(multi(a("schemas", Ty::Ref, "The schemas of the resource.")))),
];

const META_SUB: &[Attr] = &[
    ro(exact(a("resourceType", Ty::Str, "The resource type."))),
    ro(a("created", Ty::DateTime, "When it was created.")),
    ro(a("lastModified", Ty::DateTime, "When it last changed.")),
    ro(exact(a("location", Ty::Ref, "Its URI."))),
    ro(exact(a("version", Ty::Str, "Its version (the ETag)."))),
];

/// A resource type and its schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// People.
    User,
    /// Organizations.
    Group,
}

impl Resource {
    /// The core schema and its extensions: (URN, attributes, required).
    pub fn schemas(self) -> [(&'static str, &'static [Attr]); 3] {
        match self {
            Self::User => [(USER, USER_ATTRS), (ENTERPRISE, ENTERPRISE_ATTRS), (TZ_USER, TZ_USER_ATTRS)],
            Self::Group => [(GROUP, GROUP_ATTRS), (TZ_GROUP, TZ_GROUP_ATTRS), (TZ_GROUP, TZ_GROUP_ATTRS)],
        }
    }
    /// The core schema URN.
    pub fn core(self) -> &'static str {
        match self {
            Self::User => USER,
            Self::Group => GROUP,
        }
    }
    /// The extension URNs.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::User => &[ENTERPRISE, TZ_USER],
            Self::Group => &[TZ_GROUP],
        }
    }
    /// The resource type's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
    /// The endpoint, relative to the base.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }

    /// Finds an attribute by (lower-cased) schema URN and name: `None` URN means the core
    /// schema or the common attributes. Returns the URN it belongs to (`None`: top level).
    pub fn find(self, uri: Option<&str>, name: &str) -> Option<(Option<&'static str>, &'static Attr)> {
        let in_list = |list: &'static [Attr]| list.iter().find(|x| x.name.eq_ignore_ascii_case(name));
        match uri {
            None => in_list(COMMON).or_else(|| in_list(self.schemas()[0].1)).map(|x| (None, x)),
            Some(u) if u.eq_ignore_ascii_case(self.core()) => {
                in_list(COMMON).or_else(|| in_list(self.schemas()[0].1)).map(|x| (None, x))
            }
            Some(u) => {
                let (urn, attrs) = self.schemas().into_iter().skip(1).find(|(urn, _)| urn.eq_ignore_ascii_case(u))?;
                in_list(attrs).map(|x| (Some(urn), x))
            }
        }
    }

    /// Whether `uri` is one of this resource's extension URNs (case-insensitive); its spelling.
    pub fn extension(self, uri: &str) -> Option<&'static str> {
        self.extensions().iter().copied().find(|u| u.eq_ignore_ascii_case(uri))
    }
}

/// A sub-attribute of `attr` by name.
pub fn sub<'a>(attr: &'a Attr, name: &str) -> Option<&'a Attr> {
    attr.sub.iter().find(|x| x.name.eq_ignore_ascii_case(name))
}

fn attr_json(x: &Attr) -> Value {
    let ty = match x.ty {
        Ty::Str => "string",
        Ty::Bool => "boolean",
        Ty::Int => "integer",
        Ty::DateTime => "dateTime",
        Ty::Ref => "reference",
        Ty::Binary => "binary",
        Ty::Complex => "complex",
    };
    let mutability = match x.mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    };
    let returned = match x.returned {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    };
    let mut v = json!({
        "name": x.name,
        "type": ty,
        "multiValued": x.multi,
        "description": x.description,
        "required": x.required,
        "mutability": mutability,
        "returned": returned,
    });
    if let Some(o) = v.as_object_mut() {
        if x.ty != Ty::Complex && x.ty != Ty::Bool {
            o.insert("caseExact".into(), json!(x.case_exact));
        }
        if x.ty != Ty::Complex {
            o.insert("uniqueness".into(), json!(if x.unique { "server" } else { "none" }));
        }
        if !x.canonical.is_empty() {
            o.insert("canonicalValues".into(), json!(x.canonical));
        }
        if x.ty == Ty::Ref {
            let types: &[&str] = match x.name {
                "$ref" => &["User", "Group"],
                "profileUrl" | "value" => &["external"],
                _ => &["uri"],
            };
            o.insert("referenceTypes".into(), json!(types));
        }
        if !x.sub.is_empty() {
            o.insert("subAttributes".into(), Value::Array(x.sub.iter().map(attr_json).collect()));
        }
    }
    v
}

/// Every schema as served at `/Schemas` (RFC 7643 s7), with `meta`.
pub fn all(base: &str) -> Vec<Value> {
    let one = |id: &str, name: &str, description: &str, attrs: &[Attr]| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    };
    vec![
        one(USER, "User", "User Account (a natural person of the directory)", USER_ATTRS),
        one(GROUP, "Group", "Group (an organization of the directory)", GROUP_ATTRS),
        one(ENTERPRISE, "EnterpriseUser", "Enterprise User", ENTERPRISE_ATTRS),
        one(TZ_USER, "DirectoryUser", "tongzheng directory: memberships with title and order, identity", TZ_USER_ATTRS),
        one(TZ_GROUP, "DirectoryGroup", "tongzheng directory: the organization tree", TZ_GROUP_ATTRS),
    ]
}
