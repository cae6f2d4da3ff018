//! The one integration-test binary of `isthmus-client` (enrolment is driven end to end by the
//! server's tests, the TCP transport's relay by the worker's).

mod connect;
