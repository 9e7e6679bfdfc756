//! The dual-region installation: management API, REST v2, Elasticsearch; typed models.
