// Package web serves chartscan's HTTP API under /api/v1/ (described in openapi.yaml) and
// the server-rendered UI for clerks, reviewers and admins, from one http.Handler.
//
// Every route but the health check and the login page needs a signed-in user — a session
// cookie for the UI, a bearer API token for scripts — and names the roles it admits
// (admin is admitted everywhere). Forms carry a CSRF token tied to the session. Every view
// of a page image, text or patient chart, every decision, import, export and sign-in is
// written to the tamper-evident audit log. Request logs carry route patterns, never
// paths or queries, because paths hold MRNs and queries hold names.
package web
