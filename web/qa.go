package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// Quality checks of automatic filing: reviewers check the drawn pages one by one (the
// page beside the patient it was filed to); admins read the report.

// qaItem loads a drawn page for checking, recording the view, and the patient it is
// filed to with the evidence that filed it.
func (s *Server) qaItem(ctx context.Context, u *storage.User, k storage.PageKey) (storage.PageDetail, *storage.RankedCandidate, error) {
	d, err := s.viewPage(ctx, u, k, "page.view")
	if err != nil {
		return d, nil, err
	}
	i := slices.IndexFunc(d.Candidates, func(c storage.RankedCandidate) bool { return c.MRN == d.MRN })
	if i < 0 {
		return d, nil, nil
	}
	return d, &d.Candidates[i], nil
}

// qaInput is a reviewer's check as the API takes it.
type qaInput struct {
	MRN     string `json:"mrn"`
	Outcome string `json:"outcome"`
}

func (s *Server) checkQA(ctx context.Context, u *storage.User, k storage.PageKey, in qaInput) error {
	err := s.cfg.Store.CheckQA(ctx, storage.QACheck{PageKey: k, MRN: strings.TrimSpace(in.MRN), Outcome: in.Outcome, ActorID: u.ID, Actor: u.Name})
	outcome := "ok"
	if err != nil {
		outcome = chartscan.ErrorCode(err)
		if outcome == chartscan.EConflict {
			s.auditLogged(ctx, u.Name, "qa.check", "page:"+k.String(), "denied",
				map[string]any{"outcome": in.Outcome, "reason": chartscan.ErrorMessage(err)})
		}
	}
	s.metrics.decisions.WithLabelValues("qa_"+in.Outcome, outcome).Inc()
	return err
}

func (s *Server) apiQANext(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, ok, err := s.cfg.Store.NextQA(r.Context(), parseSkip(r.URL.Query()["skip"]))
	if err != nil {
		return err
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"item": nil})
		return nil
	}
	d, _, err := s.qaItem(r.Context(), u, k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": viewPage(d)})
	return nil
}

func (s *Server) apiCheckQA(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	var in qaInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := s.checkQA(r.Context(), u, k, in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiQAReport(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	rep, err := s.cfg.Store.QAReport(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) uiQANext(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	skip, err := s.skips(r, storage.QueueQA)
	if err != nil {
		return err
	}
	k, ok, err := s.cfg.Store.NextQA(r.Context(), skip)
	if err != nil {
		return err
	}
	if !ok {
		s.render(w, r, http.StatusOK, "qa", u, map[string]any{"Title": "Quality checks", "Empty": true, "Skipped": len(skip),
			"Flash": r.URL.Query().Get("flash")})
		return nil
	}
	return s.qaPage(w, r, u, k, http.StatusOK, "", r.URL.Query().Get("flash"))
}

func (s *Server) uiQAItem(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	return s.qaPage(w, r, u, k, http.StatusOK, "", "")
}

// qaPage renders one drawn page to check; errMsg says why a check of it was refused.
func (s *Server) qaPage(w http.ResponseWriter, r *http.Request, u *storage.User, k storage.PageKey, status int, errMsg, flash string) error {
	d, filed, err := s.qaItem(r.Context(), u, k)
	if err != nil {
		return err
	}
	s.render(w, r, status, "qa", u, map[string]any{"Title": "Quality check", "Item": d, "Filed": filed,
		"Error": errMsg, "Flash": flash})
	return nil
}

func (s *Server) uiCheckQA(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	in := qaInput{MRN: r.PostFormValue("mrn"), Outcome: r.PostFormValue("outcome")}
	if err := s.checkQA(r.Context(), u, k, in); err != nil {
		code := chartscan.ErrorCode(err)
		if code != chartscan.EConflict && code != chartscan.EInvalid {
			return err
		}
		_, status := classify(err)
		return s.qaPage(w, r, u, k, status, chartscan.ErrorMessage(err), "")
	}
	flash := fmt.Sprintf("page %d of %s: checked, %s", k.Page, k.DocumentID[:8], in.Outcome)
	if in.Outcome == storage.QAWrong {
		flash += " — sent back to review"
	}
	http.Redirect(w, r, "/qa?flash="+url.QueryEscape(flash), http.StatusSeeOther)
	return nil
}

func (s *Server) uiQAReport(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	rep, err := s.cfg.Store.QAReport(r.Context())
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "qareport", u, map[string]any{"Title": "Quality of automatic filing", "Report": rep})
	return nil
}
