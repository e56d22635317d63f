package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// DeliveryStore is what the delivery views read and change (issue 14, item 5):
// *storage.DB. A Store without it shows no patient documents.
type DeliveryStore interface {
	BatchDeliveries(ctx context.Context, batchID string) ([]storage.DeliveryStatus, error)
	PatientDocumentBatch(ctx context.Context, id string, version int) (string, error)
	RetryDelivery(ctx context.Context, id string, version int, actor string) (storage.PatientDocument, error)
}

func (s *Server) deliveries() (DeliveryStore, error) {
	ds, ok := s.cfg.Store.(DeliveryStore)
	if !ok {
		return nil, chartscan.Errorf(chartscan.ENotFound, "patient documents are not kept here")
	}
	return ds, nil
}

// deliveryView is a patient document version as the API and the batch's documents page
// show it: without the MRN (a clerk sees the batch, not the patients).
type deliveryView struct {
	storage.DeliveryStatus
	Number string `json:"number"`
}

// batchDeliveries returns the batch (as u may see it) and its patient documents with
// their delivery, and the count of versions by state.
func (s *Server) batchDeliveries(ctx context.Context, u *storage.User, id string) (storage.BatchSummary, []deliveryView, map[string]int, error) {
	b, err := s.batchFor(ctx, u, id)
	if err != nil {
		return b, nil, nil, err
	}
	ds, err := s.deliveries()
	if err != nil {
		return b, nil, nil, err
	}
	docs, err := ds.BatchDeliveries(ctx, b.ID)
	if err != nil {
		return b, nil, nil, err
	}
	out := make([]deliveryView, len(docs))
	counts := map[string]int{}
	for i, d := range docs {
		d.MRN = ""
		out[i] = deliveryView{DeliveryStatus: d, Number: d.Number()}
		counts[d.State]++
	}
	return b, out, counts, nil
}

func (s *Server) apiPatientDocuments(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	b, docs, counts, err := s.batchDeliveries(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch_id": b.ID, "states": counts, "patient_documents": docs})
	return nil
}

// retryDelivery makes a rejected version of a batch u may see ready again; it returns
// the version and its batch.
func (s *Server) retryDelivery(r *http.Request, u *storage.User) (storage.PatientDocument, string, error) {
	id := r.PathValue("id")
	v, err := strconv.Atoi(r.PathValue("version"))
	if _, perr := uuid.Parse(id); perr != nil || err != nil || v < 1 {
		return storage.PatientDocument{}, "", chartscan.Errorf(chartscan.ENotFound, "no such patient document")
	}
	ds, err := s.deliveries()
	if err != nil {
		return storage.PatientDocument{}, "", err
	}
	batch, err := ds.PatientDocumentBatch(r.Context(), id, v)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.PatientDocument{}, "", chartscan.Errorf(chartscan.ENotFound, "no such patient document")
	}
	if err != nil {
		return storage.PatientDocument{}, "", err
	}
	if _, err := s.batchFor(r.Context(), u, batch); err != nil {
		return storage.PatientDocument{}, "", chartscan.Errorf(chartscan.ENotFound, "no such patient document")
	}
	d, err := ds.RetryDelivery(r.Context(), id, v, u.Name)
	d.MRN = ""
	return d, batch, err
}

func (s *Server) apiRetryDelivery(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	d, _, err := s.retryDelivery(r, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient_document": d})
	return nil
}

func (s *Server) uiPatientDocuments(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	b, docs, counts, err := s.batchDeliveries(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	var states []stateCount
	for _, st := range storage.PatientDocumentStates {
		states = append(states, stateCount{st, counts[st]})
	}
	s.render(w, r, http.StatusOK, "deliveries", u, map[string]any{"Title": "Patient documents of batch " + b.ID[:8], "Batch": b,
		"Documents": docs, "States": states, "Flash": r.URL.Query().Get("flash")})
	return nil
}

type stateCount struct {
	State string
	N     int
}

func (s *Server) uiRetryDelivery(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	d, batch, err := s.retryDelivery(r, u)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/batches/"+url.PathEscape(batch)+"/documents?flash="+
		url.QueryEscape(d.ID+"-v"+strconv.Itoa(d.Version)+" will be delivered again"), http.StatusSeeOther)
	return nil
}
