package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/chartscan/chartscan"
)

// titles are the printed document titles, one per chartscan DocType.
var titles = map[string]string{
	chartscan.DocTypeProgressNote:     "PROGRESS NOTE",
	chartscan.DocTypeDischargeSummary: "DISCHARGE SUMMARY",
	chartscan.DocTypeLab:              "LABORATORY REPORT",
	chartscan.DocTypeRadiology:        "RADIOLOGY REPORT",
	chartscan.DocTypeOperative:        "OPERATIVE REPORT",
	chartscan.DocTypeConsent:          "CONSENT FOR TREATMENT",
	chartscan.DocTypeNursing:          "NURSING NOTE",
}

// DocTypes lists the document types RenderPage knows, in a fixed order.
var DocTypes = []string{
	chartscan.DocTypeProgressNote,
	chartscan.DocTypeDischargeSummary,
	chartscan.DocTypeLab,
	chartscan.DocTypeRadiology,
	chartscan.DocTypeOperative,
	chartscan.DocTypeConsent,
	chartscan.DocTypeNursing,
}

// section is one headed block of the clinical body. Mono sections are tables.
type section struct {
	heading string
	paras   []string
	mono    bool
}

// The phrase bank: generic, deliberately bland clinical prose with no people in it.
var (
	subjective = []string{
		"Patient reports feeling better today with improved appetite and sleep.",
		"Complains of mild intermittent headache, relieved by rest and fluids.",
		"Denies chest pain, shortness of breath, fever or chills.",
		"Reports occasional dizziness on standing, no falls since the last visit.",
		"Tolerating oral intake well; no nausea or vomiting overnight.",
		"States that pain is well controlled on the current regimen.",
		"Reports some fatigue in the afternoons but is walking daily.",
		"No new complaints; adherent to medications as prescribed.",
	}
	objective = []string{
		"Alert and oriented, in no acute distress. Vital signs stable and within normal limits.",
		"Heart regular rate and rhythm, no murmurs. Lungs clear to auscultation bilaterally.",
		"Abdomen soft, non-tender, non-distended. Bowel sounds present in all quadrants.",
		"Extremities warm and well perfused without edema. Wound site clean and dry.",
		"Temperature 36.8 C, pulse 76, respirations 16, oxygen saturation 98% on room air.",
		"Skin intact, no rashes or lesions noted. Mucous membranes moist.",
		"Neurologically intact with no focal deficits. Gait steady with a cane.",
	}
	assessment = []string{
		"Condition improving as expected. Continue current management.",
		"Stable chronic condition with good symptom control.",
		"Findings consistent with a resolving viral illness.",
		"Mild dehydration, improving with oral fluids.",
		"Post-operative course uncomplicated to date.",
		"Blood pressure above target; lifestyle measures reviewed.",
	}
	plan = []string{
		"Continue current medications and review in two weeks.",
		"Encourage oral fluids and gradual increase in activity.",
		"Repeat basic laboratory panel before the next visit.",
		"Physiotherapy referral placed for mobility and strength.",
		"Return precautions discussed; patient verbalized understanding.",
		"Follow up in the outpatient clinic in four to six weeks.",
		"Dietary advice given; written information provided.",
	}
	nursing = []string{
		"Patient resting comfortably in bed with call light within reach.",
		"Assisted with hygiene and ambulation to the bathroom.",
		"Intravenous site checked, no redness or swelling, flushed without difficulty.",
		"Pain assessed as 2 out of 10; no additional analgesia requested.",
		"Oral intake encouraged; tolerated a light meal.",
		"Skin assessment completed, pressure areas intact.",
		"Bed in low position, fall precautions in place.",
	}
	radiology = []string{
		"The lungs are clear. No focal consolidation, effusion or pneumothorax.",
		"Cardiomediastinal silhouette is within normal limits.",
		"No acute osseous abnormality is identified.",
		"Mild degenerative changes are noted, unchanged from the prior study.",
		"Soft tissues are unremarkable.",
		"No free air beneath the diaphragm.",
	}
	operative = []string{
		"The patient was brought to the operating room and placed supine on the table.",
		"After induction of general anesthesia, the site was prepped and draped in sterile fashion.",
		"A time-out was performed confirming the procedure and the site.",
		"The procedure was completed without complication. Estimated blood loss was minimal.",
		"The incision was closed in layers and a sterile dressing applied.",
		"The patient tolerated the procedure well and was taken to recovery in stable condition.",
	}
	consent = []string{
		"I consent to the examination and treatment recommended by my care team.",
		"The nature, benefits and risks of the proposed treatment have been explained to me.",
		"I have had the opportunity to ask questions and my questions have been answered.",
		"I understand that I may withdraw this consent at any time before treatment.",
		"I understand that no guarantee has been made about the results of treatment.",
		"This form is part of a synthetic test record and has no legal effect.",
	}
	labTests = []struct {
		name, unit, rng string
		lo, hi          float64
	}{
		{"Sodium", "mmol/L", "135-145", 133, 147},
		{"Potassium", "mmol/L", "3.5-5.1", 3.3, 5.4},
		{"Chloride", "mmol/L", "98-107", 96, 109},
		{"Urea", "mmol/L", "2.5-7.8", 2.2, 8.5},
		{"Creatinine", "umol/L", "60-110", 55, 120},
		{"Glucose", "mmol/L", "3.9-7.8", 3.8, 9.0},
		{"Hemoglobin", "g/L", "120-160", 112, 165},
		{"White cells", "10^9/L", "4.0-11.0", 3.8, 12.0},
		{"Platelets", "10^9/L", "150-400", 140, 420},
		{"CRP", "mg/L", "0-5", 0.5, 12},
	}
)

// pick returns n distinct phrases from bank chosen by rng, joined into a paragraph.
func pick(rng *rand.Rand, bank []string, n int) string {
	return picks(rng, bank, n)[0]
}

// picks returns one paragraph per count in ns, no phrase used twice.
func picks(rng *rand.Rand, bank []string, ns ...int) []string {
	perm := rng.Perm(len(bank))
	var out []string
	for _, n := range ns {
		n = min(n, len(perm))
		var para []string
		for _, j := range perm[:n] {
			para = append(para, bank[j])
		}
		perm = perm[n:]
		out = append(out, strings.Join(para, " "))
	}
	return out
}

// clinicalText returns the body of a page of docType; continuation pages get the later
// sections of a note rather than its opening.
func clinicalText(docType string, continuation bool, rng *rand.Rand) []section {
	switch docType {
	case chartscan.DocTypeLab:
		rows := []string{fmt.Sprintf("%-14s %8s  %-8s %s", "Test", "Result", "Units", "Reference")}
		for _, t := range labTests {
			v := t.lo + rng.Float64()*(t.hi-t.lo)
			rows = append(rows, fmt.Sprintf("%-14s %8.1f  %-8s %s", t.name, v, t.unit, t.rng))
		}
		s := []section{{heading: "Results", paras: rows, mono: true}}
		return append(s, section{heading: "Comment", paras: []string{pick(rng, assessment, 1) + " " + pick(rng, plan, 1)}})
	case chartscan.DocTypeRadiology:
		rad := picks(rng, radiology, 4, 2)
		s := []section{{heading: "Findings", paras: rad[:1]}}
		if !continuation {
			s = append([]section{{heading: "Examination", paras: []string{"Chest radiograph, two views. Clinical indication: " + pick(rng, subjective, 1)}}}, s...)
		}
		return append(s, section{heading: "Impression", paras: rad[1:]})
	case chartscan.DocTypeOperative:
		return []section{
			{heading: "Procedure", paras: picks(rng, operative, 3, 3)},
			{heading: "Post-operative plan", paras: []string{pick(rng, plan, 3)}},
		}
	case chartscan.DocTypeConsent:
		return []section{
			{heading: "Statement", paras: picks(rng, consent, 3, 3)},
			{heading: "Signatures", paras: []string{"Signature of patient: ______________________", "Signature of witness: ______________________"}},
		}
	case chartscan.DocTypeNursing:
		return []section{
			{heading: "Shift summary", paras: picks(rng, nursing, 4, 3)},
			{heading: "Plan", paras: []string{pick(rng, plan, 2)}},
		}
	case chartscan.DocTypeDischargeSummary:
		s := []section{
			{heading: "Hospital course", paras: []string{pick(rng, objective, 3), pick(rng, assessment, 2)}},
			{heading: "Discharge instructions", paras: []string{pick(rng, plan, 3)}},
		}
		if !continuation {
			s = append([]section{{heading: "Reason for admission", paras: []string{pick(rng, subjective, 2)}}}, s...)
		}
		return s
	}
	s := []section{
		{heading: "Objective", paras: []string{pick(rng, objective, 3)}},
		{heading: "Assessment", paras: []string{pick(rng, assessment, 2)}},
		{heading: "Plan", paras: []string{pick(rng, plan, 3)}},
	}
	if !continuation {
		s = append([]section{{heading: "Subjective", paras: []string{pick(rng, subjective, 3)}}}, s...)
	}
	return s
}
