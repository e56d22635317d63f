package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan/synth"
)

func newSynthCmd() *cobra.Command {
	var identities, out, layouts, empiRecord string
	var seed int64
	var greyJPEG bool
	var opt synth.Options
	var ppd, ppp [2]int
	cmd := &cobra.Command{
		Use:   "synth --out DIR",
		Short: "Generate synthetic scanned charts (visibly synthetic PDFs), their ground truth and an EMPI CSV",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := os.Open(identities)
			if err != nil {
				return fmt.Errorf("identities: %w", err)
			}
			rec, err := synth.ParseEMPIRecord(empiRecord)
			if err != nil {
				f.Close()
				return err
			}
			people, err := synth.LoadSplink(f, seed, rec)
			f.Close()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			opt.Seed = seed
			if greyJPEG {
				opt.Encoding = synth.GreyJPEG
			}
			opt.PatientsPerDocument, opt.PagesPerPatient = ppd, ppp
			if opt.Labels, err = parseLayouts(layouts); err != nil {
				return err
			}
			truth, err := synth.Generate(people, opt, out)
			if err != nil {
				return err
			}
			pages := 0
			for _, d := range truth.Documents {
				pages += len(d.Pages)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d documents, %d pages, truth.json, empi.csv\n", out, len(truth.Documents), pages)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&identities, "identities", "testdata/identities/splink/fake_1000.csv", "Splink fake_1000 CSV")
	fl.StringVar(&out, "out", "", "output folder")
	fl.StringVar(&empiRecord, "empi-record", "golden", "which version of each person empi.csv holds: golden (each field's most common value in the cluster, as an EMPI's survivorship keeps) or first (the first complete row, defects and all)")
	fl.Int64Var(&seed, "seed", 1, "random seed: the same seed gives the same files")
	fl.IntVar(&opt.Documents, "documents", 10, "number of PDFs")
	fl.IntVar(&opt.Distractors, "distractors", 0, "other patients empi.csv holds besides the charts' people (synthetic, the same names, any birth date), as a real EMPI's namesakes")
	fl.IntVar(&ppd[0], "min-patients", 1, "fewest patients per PDF")
	fl.IntVar(&ppd[1], "max-patients", 3, "most patients per PDF")
	fl.IntVar(&ppp[0], "min-pages", 1, "fewest pages per patient")
	fl.IntVar(&ppp[1], "max-pages", 3, "most pages per patient")
	fl.Float64Var(&opt.ContinuationShare, "continuation", 0.3, "share of non-first pages without identifiers")
	fl.Float64Var(&opt.MaxSkew, "skew", 1.5, "largest skew in degrees")
	fl.Float64Var(&opt.Noise, "noise", 0.002, "salt-and-pepper share")
	fl.Float64Var(&opt.RotateShare, "rotate", 0, "share of pages scanned turned 90/180/270")
	fl.Float64Var(&opt.NotInEMPIShare, "not-in-empi", 0.1, "share of patients left out of empi.csv")
	fl.IntVar(&opt.DPI, "dpi", 300, "scan resolution")
	fl.BoolVar(&greyJPEG, "jpeg", false, "store the pages as 8-bit grey JPEG (DCTDecode), as a greyscale scan does, instead of 1-bit Flate")
	fl.BoolVar(&opt.MarkNotInEMPI, "mark-not-in-empi", true, "label pages of patients left out of the EMPI as kind not_in_empi")
	fl.Float64Var(&opt.NearTwinShare, "near-twins", 0, "share of patients given a near twin in the EMPI (same surname, DOB, address)")
	fl.Float64Var(&opt.NameDOBShare, "name-dob", 0, "share of identifying pages printed with name and DOB but no MRN")
	fl.Float64Var(&opt.WrongMRNShare, "wrong-mrn", 0, "share of identifying pages printed with a one-digit slip or transposition in the MRN")
	fl.Float64Var(&opt.VariantShare, "variants", 0, "share of identifying pages printed from a noisier record of the same person")
	fl.StringVar(&layouts, "layouts", "", "comma-separated layout families of the identifying pages ("+
		strings.Join(synth.LayoutNames(), ",")+") or all; empty: the four classic ones, without distractors")
	fl.BoolVar(&opt.PageNumbers, "page-numbers", false, `number each printed document's pages in a style drawn per document ("Page k of N", "Pg k/N", …)`)
	cmd.MarkFlagRequired("out")
	return cmd
}

// parseLayouts reads the --layouts list: layout names separated by commas, or all.
func parseLayouts(list string) ([]synth.LabelStyle, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []synth.LabelStyle
	for _, name := range strings.Split(list, ",") {
		if strings.TrimSpace(name) == "all" {
			for _, n := range synth.LayoutNames() {
				l, _ := synth.ParseLayout(n)
				out = append(out, l)
			}
			continue
		}
		l, err := synth.ParseLayout(name)
		if err != nil {
			return nil, fmt.Errorf("--layouts: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}
