package sandbox

// The small code lists the synthetic data set draws from. They are read-only
// tables: nothing writes to them after initialisation. Codes and
// displays follow the real code systems closely enough for a FHIR client to
// render them, but this is sample data, not a terminology reference; the NDCs
// in particular are illustrative.

// Code systems (canonical URLs as used by US Core 6.1.0 and CARIN BB 2.1).
const (
	systemICD10CM  = "http://hl7.org/fhir/sid/icd-10-cm"
	systemICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
	systemCPT      = "http://www.ama-assn.org/go/cpt"
	systemHCPCS    = "urn:oid:2.16.840.1.113883.6.285"
	systemCDT      = "http://www.ada.org/cdt"
	systemNDC      = "http://hl7.org/fhir/sid/ndc"
	systemRxNorm   = "http://www.nlm.nih.gov/research/umls/rxnorm"
	systemLOINC    = "http://loinc.org"
	systemCVX      = "http://hl7.org/fhir/sid/cvx"
	systemSNOMED   = "http://snomed.info/sct"
	systemUCUM     = "http://unitsofmeasure.org"
	systemRevenue  = "https://www.nubc.org/CodeSystem/RevenueCodes"
	systemNUCC     = "http://nucc.org/provider-taxonomy"
)

// code is a coded concept.
type code struct {
	system, code, display string
}

// sensitivity is a category of data that other law protects (DESIGN.md §1
// rule 5): rows of such a category are flagged sensitive and carry its labels.
type sensitivity int

const (
	notSensitive sensitivity = iota
	substanceUse             // 42 CFR Part 2
	mentalHealth             // state-protected psychiatric information
	hiv                      // state-protected HIV information
)

// labels are the security labels (HL7 v3 ActCode) of a sensitivity.
func (s sensitivity) labels() []string {
	switch s {
	case substanceUse:
		return []string{"42CFRPart2", "ETH"}
	case mentalHealth:
		return []string{"PSY"}
	case hiv:
		return []string{"HIV"}
	}
	return nil
}

var givenNamesFemale = []string{
	"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
	"Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly",
	"Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie",
	"Rebecca", "Laura", "Sharon", "Cynthia", "Amy", "Maria", "Ana", "Mei", "Priya", "Aaliyah",
	"Fatima", "Sofia", "Camila", "Olivia", "Grace",
}

var givenNamesMale = []string{
	"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
	"Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven",
	"Andrew", "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald",
	"Jason", "Edward", "Jeffrey", "Ryan", "Jose", "Luis", "Wei", "Arjun", "Malik", "Omar",
	"Mateo", "Diego", "Noah", "Samuel",
}

var familyNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
	"Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
	"Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
	"Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
	"Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
	"Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Chen", "Patel", "Kim", "Singh",
	"Okafor", "Yamamoto", "O'Brien", "Kowalski", "Schmidt", "Haddad",
}

var streetNames = []string{
	"Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Ave",
	"Lake Shore Dr", "Park Pl", "Highland Ave", "Sunset Blvd", "Church St", "Mill Rd",
	"River Rd", "Spring St", "Hillcrest Dr", "Jefferson St", "Lincoln Ave", "Walnut St",
	"Chestnut St", "Franklin Ave", "Madison St", "Willow Way", "Meadow Ln", "Forest Ave",
	"Broadway", "Center St", "Prospect Ave", "Ridge Rd", "Harbor View Dr",
}

// city is a US city with its state, one of its ZIP codes and an area code.
type city struct {
	name, state, zip, areaCode string
}

var cities = []city{
	{"Springfield", "IL", "62701", "217"}, {"Columbus", "OH", "43215", "614"},
	{"Austin", "TX", "78701", "512"}, {"Sacramento", "CA", "95814", "916"},
	{"Denver", "CO", "80202", "303"}, {"Nashville", "TN", "37203", "615"},
	{"Madison", "WI", "53703", "608"}, {"Raleigh", "NC", "27601", "919"},
	{"Portland", "OR", "97205", "503"}, {"Albany", "NY", "12207", "518"},
	{"Richmond", "VA", "23219", "804"}, {"Phoenix", "AZ", "85004", "602"},
	{"Atlanta", "GA", "30303", "404"}, {"Boise", "ID", "83702", "208"},
	{"Des Moines", "IA", "50309", "515"}, {"Harrisburg", "PA", "17101", "717"},
	{"Lansing", "MI", "48933", "517"}, {"Tallahassee", "FL", "32301", "850"},
	{"Salt Lake City", "UT", "84111", "801"}, {"Omaha", "NE", "68102", "402"},
	{"Louisville", "KY", "40202", "502"}, {"Albuquerque", "NM", "87102", "505"},
	{"Providence", "RI", "02903", "401"}, {"Hartford", "CT", "06103", "860"},
	{"Baltimore", "MD", "21201", "410"}, {"Minneapolis", "MN", "55401", "612"},
	{"Kansas City", "MO", "64106", "816"}, {"Little Rock", "AR", "72201", "501"},
	{"Birmingham", "AL", "35203", "205"}, {"Charleston", "WV", "25301", "304"},
}

// orgSeed describes one synthetic provider organization.
type orgSeed struct {
	name     string
	aco      bool
	hospital string // facility name on institutional claims
}

var organizationSeeds = []orgSeed{
	{"Riverbend Health System", false, "Riverbend Memorial Hospital"},
	{"Lakeside Accountable Care Network", true, "Lakeside General Hospital"},
	{"Sierra Vista Medical Group", false, "Sierra Vista Regional Medical Center"},
	{"Blue Ridge Community Health", false, "Blue Ridge Community Hospital"},
	{"Prairie Partners ACO", true, "Prairie Valley Medical Center"},
	{"Harborview Physicians Alliance", true, "Harborview Medical Center"},
	{"Desert Sun Health Partners", false, "Desert Sun Hospital"},
	{"Northwoods Integrated Care", true, "Northwoods University Hospital"},
}

// Specialties (NUCC provider taxonomy) by a practitioner's slot in its
// organization, so that claims can pick a fitting rendering provider.
const (
	slotPrimary     = iota // family or internal medicine
	slotSpecialist         // cardiology, orthopaedics, …
	slotDentist            // oral claims
	slotBehavioral         // psychiatry, addiction medicine
	slotHospitalist        // emergency / hospital medicine
	practitionersPerOrg
)

var specialtiesBySlot = [practitionersPerOrg][]code{
	slotPrimary: {
		{systemNUCC, "207Q00000X", "Family Medicine"},
		{systemNUCC, "207R00000X", "Internal Medicine"},
		{systemNUCC, "208000000X", "Pediatrics"},
	},
	slotSpecialist: {
		{systemNUCC, "207RC0000X", "Cardiovascular Disease"},
		{systemNUCC, "207X00000X", "Orthopaedic Surgery"},
		{systemNUCC, "207V00000X", "Obstetrics & Gynecology"},
		{systemNUCC, "207N00000X", "Dermatology"},
		{systemNUCC, "2085R0202X", "Diagnostic Radiology"},
	},
	slotDentist: {
		{systemNUCC, "1223G0001X", "General Practice Dentistry"},
		{systemNUCC, "1223P0300X", "Periodontics"},
	},
	slotBehavioral: {
		{systemNUCC, "2084P0800X", "Psychiatry"},
		{systemNUCC, "2084A0401X", "Addiction Medicine"},
	},
	slotHospitalist: {
		{systemNUCC, "207P00000X", "Emergency Medicine"},
		{systemNUCC, "208M00000X", "Hospitalist"},
	},
}

// Diagnoses (ICD-10-CM). Chronic ones also serve as Conditions.
var diagnosesChronic = []code{
	{systemICD10CM, "E11.9", "Type 2 diabetes mellitus without complications"},
	{systemICD10CM, "E11.65", "Type 2 diabetes mellitus with hyperglycemia"},
	{systemICD10CM, "I10", "Essential (primary) hypertension"},
	{systemICD10CM, "E78.5", "Hyperlipidemia, unspecified"},
	{systemICD10CM, "J45.909", "Unspecified asthma, uncomplicated"},
	{systemICD10CM, "J44.9", "Chronic obstructive pulmonary disease, unspecified"},
	{systemICD10CM, "K21.9", "Gastro-esophageal reflux disease without esophagitis"},
	{systemICD10CM, "E66.9", "Obesity, unspecified"},
	{systemICD10CM, "M17.11", "Unilateral primary osteoarthritis, right knee"},
	{systemICD10CM, "I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"},
	{systemICD10CM, "I48.91", "Unspecified atrial fibrillation"},
	{systemICD10CM, "I50.9", "Heart failure, unspecified"},
	{systemICD10CM, "N18.9", "Chronic kidney disease, unspecified"},
	{systemICD10CM, "E03.9", "Hypothyroidism, unspecified"},
	{systemICD10CM, "G43.909", "Migraine, unspecified, not intractable, without status migrainosus"},
}

var diagnosesAcute = []code{
	{systemICD10CM, "J06.9", "Acute upper respiratory infection, unspecified"},
	{systemICD10CM, "N39.0", "Urinary tract infection, site not specified"},
	{systemICD10CM, "M54.50", "Low back pain, unspecified"},
	{systemICD10CM, "R10.9", "Unspecified abdominal pain"},
	{systemICD10CM, "R07.9", "Chest pain, unspecified"},
	{systemICD10CM, "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"},
	{systemICD10CM, "J02.9", "Acute pharyngitis, unspecified"},
	{systemICD10CM, "H66.90", "Otitis media, unspecified, unspecified ear"},
	{systemICD10CM, "Z00.00", "Encounter for general adult medical examination without abnormal findings"},
	{systemICD10CM, "Z23", "Encounter for immunization"},
}

var diagnosesOral = []code{
	{systemICD10CM, "K02.9", "Dental caries, unspecified"},
	{systemICD10CM, "K05.10", "Chronic gingivitis, plaque induced"},
	{systemICD10CM, "K04.7", "Periapical abscess without sinus"},
	{systemICD10CM, "Z01.20", "Encounter for dental examination and cleaning without abnormal findings"},
}

var diagnosesSensitive = [...][]code{
	substanceUse: {
		{systemICD10CM, "F10.20", "Alcohol dependence, uncomplicated"},
		{systemICD10CM, "F11.20", "Opioid dependence, uncomplicated"},
		{systemICD10CM, "F12.20", "Cannabis dependence, uncomplicated"},
	},
	mentalHealth: {
		{systemICD10CM, "F32.9", "Major depressive disorder, single episode, unspecified"},
		{systemICD10CM, "F33.1", "Major depressive disorder, recurrent, moderate"},
		{systemICD10CM, "F41.1", "Generalized anxiety disorder"},
		{systemICD10CM, "F31.9", "Bipolar disorder, unspecified"},
	},
	hiv: {
		{systemICD10CM, "B20", "Human immunodeficiency virus [HIV] disease"},
	},
}

// priced is a billable service with a typical charge range in dollars.
type priced struct {
	code
	low, high int
}

// Professional and outpatient services (CPT, HCPCS).
var servicesVisit = []priced{
	{code{systemCPT, "99213", "Office or other outpatient visit, established patient, low complexity"}, 95, 180},
	{code{systemCPT, "99214", "Office or other outpatient visit, established patient, moderate complexity"}, 140, 260},
	{code{systemCPT, "99203", "Office or other outpatient visit, new patient, low complexity"}, 120, 220},
	{code{systemCPT, "99396", "Periodic preventive medicine visit, established patient, 40-64 years"}, 180, 320},
	{code{systemHCPCS, "G0439", "Annual wellness visit, subsequent"}, 150, 260},
}

var servicesAncillary = []priced{
	{code{systemCPT, "36415", "Collection of venous blood by venipuncture"}, 10, 35},
	{code{systemCPT, "80053", "Comprehensive metabolic panel"}, 40, 150},
	{code{systemCPT, "85025", "Complete blood count with automated differential"}, 25, 90},
	{code{systemCPT, "83036", "Hemoglobin; glycosylated (A1C)"}, 30, 110},
	{code{systemCPT, "80061", "Lipid panel"}, 35, 140},
	{code{systemCPT, "81003", "Urinalysis, automated, without microscopy"}, 10, 45},
	{code{systemCPT, "71046", "Radiologic examination, chest; 2 views"}, 90, 350},
	{code{systemCPT, "93000", "Electrocardiogram, routine, with interpretation and report"}, 60, 220},
	{code{systemCPT, "90471", "Immunization administration, one vaccine"}, 20, 60},
	{code{systemCPT, "90686", "Influenza virus vaccine, quadrivalent, preservative free, intramuscular"}, 25, 60},
	{code{systemCPT, "97110", "Therapeutic exercises, each 15 minutes"}, 45, 120},
	{code{systemHCPCS, "J1100", "Injection, dexamethasone sodium phosphate, 1 mg"}, 5, 30},
	{code{systemHCPCS, "J3420", "Injection, vitamin B-12 cyanocobalamin, up to 1000 mcg"}, 10, 40},
}

var servicesOutpatient = []priced{
	{code{systemCPT, "99284", "Emergency department visit, moderate severity"}, 600, 1800},
	{code{systemCPT, "99285", "Emergency department visit, high severity"}, 1200, 3500},
	{code{systemCPT, "73721", "Magnetic resonance imaging, any joint of lower extremity, without contrast"}, 900, 3200},
	{code{systemCPT, "70450", "Computed tomography, head or brain, without contrast"}, 700, 2800},
	{code{systemCPT, "45378", "Colonoscopy, flexible; diagnostic"}, 1500, 4200},
	{code{systemCPT, "29881", "Arthroscopy, knee, surgical; with meniscectomy"}, 4000, 11000},
	{code{systemCPT, "66984", "Extracapsular cataract removal with insertion of intraocular lens prosthesis"}, 3000, 8000},
}

var servicesSensitive = [...][]priced{
	substanceUse: {
		{code{systemHCPCS, "H0020", "Alcohol and/or drug services; methadone administration and/or service"}, 15, 40},
		{code{systemHCPCS, "H0004", "Behavioral health counseling and therapy, per 15 minutes"}, 30, 80},
	},
	mentalHealth: {
		{code{systemCPT, "90834", "Psychotherapy, 45 minutes with patient"}, 110, 220},
		{code{systemCPT, "90837", "Psychotherapy, 60 minutes with patient"}, 150, 280},
		{code{systemCPT, "90792", "Psychiatric diagnostic evaluation with medical services"}, 200, 420},
	},
	hiv: {
		{code{systemCPT, "87536", "Infectious agent detection by nucleic acid, HIV-1, quantification"}, 120, 300},
		{code{systemCPT, "99214", "Office or other outpatient visit, established patient, moderate complexity"}, 140, 260},
	},
}

var modifiers = []string{"25", "59", "RT", "LT", "26", "TC", "GT"}

// Dental services (CDT).
var servicesOral = []priced{
	{code{systemCDT, "D0120", "Periodic oral evaluation - established patient"}, 40, 90},
	{code{systemCDT, "D0150", "Comprehensive oral evaluation - new or established patient"}, 70, 150},
	{code{systemCDT, "D1110", "Prophylaxis - adult"}, 80, 160},
	{code{systemCDT, "D1206", "Topical application of fluoride varnish"}, 25, 60},
	{code{systemCDT, "D0274", "Bitewings - four radiographic images"}, 50, 110},
	{code{systemCDT, "D0210", "Intraoral - comprehensive series of radiographic images"}, 110, 220},
	{code{systemCDT, "D2391", "Resin-based composite - one surface, posterior"}, 130, 280},
	{code{systemCDT, "D2740", "Crown - porcelain/ceramic"}, 900, 1800},
	{code{systemCDT, "D3330", "Endodontic therapy, molar tooth (excluding final restoration)"}, 900, 1700},
	{code{systemCDT, "D4341", "Periodontal scaling and root planing - four or more teeth per quadrant"}, 180, 350},
	{code{systemCDT, "D7140", "Extraction, erupted tooth or exposed root"}, 120, 300},
}

// Institutional revenue codes (NUBC) with charge ranges per unit.
var revenueRoom = priced{code{systemRevenue, "0120", "Room & Board - Semi-Private Two Bed - General"}, 1400, 3800}

var revenueAncillary = []priced{
	{code{systemRevenue, "0250", "Pharmacy - General"}, 150, 2500},
	{code{systemRevenue, "0270", "Medical/Surgical Supplies and Devices - General"}, 100, 1800},
	{code{systemRevenue, "0300", "Laboratory - General"}, 80, 900},
	{code{systemRevenue, "0320", "Radiology - Diagnostic - General"}, 200, 1500},
	{code{systemRevenue, "0360", "Operating Room Services - General"}, 2500, 15000},
	{code{systemRevenue, "0420", "Physical Therapy - General"}, 150, 600},
	{code{systemRevenue, "0450", "Emergency Room - General"}, 500, 2500},
	{code{systemRevenue, "0636", "Drugs Requiring Detailed Coding"}, 50, 1200},
	{code{systemRevenue, "0730", "EKG/ECG - General"}, 100, 400},
	{code{systemRevenue, "0710", "Recovery Room - General"}, 400, 1800},
}

// admission is an inpatient scenario: its MS-DRG, principal diagnosis and
// ICD-10-PCS procedures.
type admission struct {
	drg        string
	diagnosis  code
	procedures []code
	days       int // typical length of stay
	sensitive  sensitivity
}

var admissions = []admission{
	{"470", code{systemICD10CM, "M17.11", "Unilateral primary osteoarthritis, right knee"},
		[]code{{systemICD10PCS, "0SRC0J9", "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open Approach"}}, 2, notSensitive},
	{"291", code{systemICD10CM, "I50.9", "Heart failure, unspecified"},
		[]code{{systemICD10PCS, "4A023N7", "Measurement of Cardiac Sampling and Pressure, Left Heart, Percutaneous Approach"}}, 5, notSensitive},
	{"871", code{systemICD10CM, "A41.9", "Sepsis, unspecified organism"},
		[]code{{systemICD10PCS, "3E03329", "Introduction of Other Anti-infective into Peripheral Vein, Percutaneous Approach"}}, 6, notSensitive},
	{"193", code{systemICD10CM, "J18.9", "Pneumonia, unspecified organism"},
		[]code{{systemICD10PCS, "3E03329", "Introduction of Other Anti-infective into Peripheral Vein, Percutaneous Approach"}}, 4, notSensitive},
	{"190", code{systemICD10CM, "J44.1", "Chronic obstructive pulmonary disease with (acute) exacerbation"},
		[]code{{systemICD10PCS, "5A09357", "Assistance with Respiratory Ventilation, <24 Consecutive Hours, CPAP"}}, 4, notSensitive},
	{"247", code{systemICD10CM, "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"},
		[]code{{systemICD10PCS, "02703DZ", "Dilation of Coronary Artery, One Artery with Intraluminal Device, Percutaneous Approach"}}, 3, notSensitive},
	{"807", code{systemICD10CM, "O80", "Encounter for full-term uncomplicated delivery"},
		[]code{{systemICD10PCS, "10E0XZZ", "Delivery of Products of Conception, External Approach"}}, 2, notSensitive},
	{"065", code{systemICD10CM, "I63.9", "Cerebral infarction, unspecified"},
		[]code{{systemICD10PCS, "3E03317", "Introduction of Other Thrombolytic into Peripheral Vein, Percutaneous Approach"}}, 4, notSensitive},
	{"897", code{systemICD10CM, "F10.239", "Alcohol dependence with withdrawal, unspecified"},
		[]code{{systemICD10PCS, "HZ2ZZZZ", "Detoxification Services for Substance Abuse Treatment"}}, 4, substanceUse},
	{"885", code{systemICD10CM, "F33.2", "Major depressive disorder, recurrent severe without psychotic features"},
		[]code{{systemICD10PCS, "GZ3ZZZZ", "Medication Management"}}, 7, mentalHealth},
}

// drug is a dispensable medication: NDC for claims and PAs, RxNorm for
// MedicationRequests.
type drug struct {
	ndc, rxnorm, display string
	unitCost             int // cents per dispensed unit
	specialty            bool
	sensitive            sensitivity
}

var drugs = []drug{
	{"68180051301", "314076", "lisinopril 10 MG Oral Tablet", 12, false, notSensitive},
	{"00093726701", "860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", 15, false, notSensitive},
	{"00378395205", "617310", "atorvastatin 20 MG Oral Tablet", 20, false, notSensitive},
	{"00093317105", "197361", "amlodipine 5 MG Oral Tablet", 10, false, notSensitive},
	{"00172208380", "310798", "hydrochlorothiazide 25 MG Oral Tablet", 8, false, notSensitive},
	{"00093231001", "312961", "simvastatin 20 MG Oral Tablet", 11, false, notSensitive},
	{"00173068220", "745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", 4200, false, notSensitive},
	{"00093310705", "308182", "amoxicillin 250 MG Oral Capsule", 25, false, notSensitive},
	{"00904198261", "313782", "acetaminophen 325 MG Oral Tablet", 3, false, notSensitive},
	{"00904585361", "310965", "ibuprofen 200 MG Oral Tablet", 4, false, notSensitive},
	{"00406052301", "1049221", "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet", 90, false, notSensitive},
	{"00074379902", "1156891", "adalimumab 40 MG/0.8 ML Prefilled Syringe [Humira]", 310000, true, notSensitive},
	{"00169413212", "1991311", "semaglutide 1 MG/0.75 ML Pen Injector [Ozempic]", 93000, true, notSensitive},
	{"00088221905", "285018", "insulin glargine 100 UNT/ML Injectable Solution [Lantus]", 2900, true, notSensitive},
	{"12496120803", "1010606", "buprenorphine 8 MG / naloxone 2 MG Sublingual Film [Suboxone]", 1900, true, substanceUse},
	{"00093015901", "312940", "sertraline 50 MG Oral Tablet", 14, false, mentalHealth},
	{"61958250101", "1999667", "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet [Biktarvy]", 12500, true, hiv},
}

// lab is an Observation: LOINC code, UCUM unit and a plausible value range.
type lab struct {
	code
	unit      string
	low, high float64
	decimals  int
	vital     bool
	sensitive sensitivity
}

var labs = []lab{
	{code{systemLOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"}, "%", 4.6, 9.8, 1, false, notSensitive},
	{code{systemLOINC, "2345-7", "Glucose [Mass/volume] in Serum or Plasma"}, "mg/dL", 70, 190, 0, false, notSensitive},
	{code{systemLOINC, "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"}, "mg/dL", 140, 270, 0, false, notSensitive},
	{code{systemLOINC, "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"}, "mg/dL", 32, 85, 0, false, notSensitive},
	{code{systemLOINC, "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation"}, "mg/dL", 60, 190, 0, false, notSensitive},
	{code{systemLOINC, "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"}, "mg/dL", 55, 320, 0, false, notSensitive},
	{code{systemLOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"}, "mg/dL", 0.6, 1.8, 2, false, notSensitive},
	{code{systemLOINC, "718-7", "Hemoglobin [Mass/volume] in Blood"}, "g/dL", 10.5, 17.5, 1, false, notSensitive},
	{code{systemLOINC, "6690-2", "Leukocytes [#/volume] in Blood by Automated count"}, "10*3/uL", 3.8, 11.5, 1, false, notSensitive},
	{code{systemLOINC, "2951-2", "Sodium [Moles/volume] in Serum or Plasma"}, "mmol/L", 133, 146, 0, false, notSensitive},
	{code{systemLOINC, "2823-3", "Potassium [Moles/volume] in Serum or Plasma"}, "mmol/L", 3.4, 5.2, 1, false, notSensitive},
	{code{systemLOINC, "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma"}, "m[IU]/L", 0.4, 5.5, 2, false, notSensitive},
	{code{systemLOINC, "8867-4", "Heart rate"}, "/min", 54, 104, 0, true, notSensitive},
	{code{systemLOINC, "9279-1", "Respiratory rate"}, "/min", 12, 20, 0, true, notSensitive},
	{code{systemLOINC, "8310-5", "Body temperature"}, "Cel", 36.1, 37.9, 1, true, notSensitive},
	{code{systemLOINC, "29463-7", "Body weight"}, "kg", 48, 130, 1, true, notSensitive},
	{code{systemLOINC, "8302-2", "Body height"}, "cm", 150, 195, 1, true, notSensitive},
	{code{systemLOINC, "39156-5", "Body mass index (BMI) [Ratio]"}, "kg/m2", 18, 41, 1, true, notSensitive},
	{code{systemLOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"}, "%", 91, 100, 0, true, notSensitive},
	{code{systemLOINC, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"}, "{score}", 0, 27, 0, false, mentalHealth},
	{code{systemLOINC, "20447-9", "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe detection"}, "{copies}/mL", 20, 50000, 0, false, hiv},
}

// Vaccines (CVX).
var vaccines = []code{
	{systemCVX, "140", "Influenza, seasonal, injectable, preservative free"},
	{systemCVX, "150", "Influenza, injectable, quadrivalent, preservative free"},
	{systemCVX, "208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"},
	{systemCVX, "207", "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose"},
	{systemCVX, "115", "Tdap"},
	{systemCVX, "133", "Pneumococcal conjugate vaccine, 13 valent"},
	{systemCVX, "33", "pneumococcal polysaccharide vaccine, 23 valent"},
	{systemCVX, "187", "zoster vaccine recombinant"},
	{systemCVX, "62", "HPV, quadrivalent"},
	{systemCVX, "43", "Hep B, adult"},
	{systemCVX, "52", "Hep A, adult"},
	{systemCVX, "03", "MMR"},
}

// Allergies (SNOMED CT).
var allergies = []code{
	{systemSNOMED, "91936005", "Allergy to penicillin"},
	{systemSNOMED, "294505008", "Allergy to sulfonamides"},
	{systemSNOMED, "300913006", "Shellfish allergy"},
	{systemSNOMED, "91935009", "Allergy to peanuts"},
	{systemSNOMED, "91934008", "Allergy to nut"},
	{systemSNOMED, "418689008", "Allergy to grass pollen"},
	{systemSNOMED, "232350006", "House dust mite allergy"},
	{systemSNOMED, "300916003", "Latex allergy"},
	{systemSNOMED, "425525006", "Allergy to dairy product"},
	{systemSNOMED, "417532002", "Allergy to fish"},
	{systemSNOMED, "91930004", "Allergy to eggs"},
	{systemSNOMED, "419474003", "Allergy to mould"},
}

// Procedures for the Procedure resource (CPT).
var clinicalProcedures = []code{
	{systemCPT, "45378", "Colonoscopy, flexible; diagnostic"},
	{systemCPT, "29881", "Arthroscopy, knee, surgical; with meniscectomy"},
	{systemCPT, "66984", "Extracapsular cataract removal with insertion of intraocular lens prosthesis"},
	{systemCPT, "93000", "Electrocardiogram, routine, with interpretation and report"},
	{systemCPT, "71046", "Radiologic examination, chest; 2 views"},
	{systemCPT, "11102", "Tangential biopsy of skin, single lesion"},
	{systemCPT, "77067", "Screening mammography, bilateral, including computer-aided detection"},
	{systemCPT, "20610", "Arthrocentesis, aspiration and/or injection, major joint or bursa"},
}

// Encounter types (CPT), by class (v3 ActCode).
type encounterKind struct {
	class string
	typ   code
}

var encounterKinds = []encounterKind{
	{"AMB", code{systemCPT, "99213", "Office or other outpatient visit, established patient, low complexity"}},
	{"AMB", code{systemCPT, "99214", "Office or other outpatient visit, established patient, moderate complexity"}},
	{"AMB", code{systemCPT, "99396", "Periodic preventive medicine visit, established patient, 40-64 years"}},
	{"EMER", code{systemCPT, "99284", "Emergency department visit, moderate severity"}},
	{"IMP", code{systemCPT, "99223", "Initial hospital inpatient care, high complexity"}},
	{"VR", code{systemCPT, "99442", "Telephone evaluation and management service, 11-20 minutes"}},
	{"HH", code{systemCPT, "99349", "Home visit, established patient, moderate complexity"}},
}

// reason is a coded reason with its specific text.
type reason struct {
	code, text string
}

// Claim adjustment reason codes (X12 CARC) used for denied claim lines.
var claimDenials = []reason{
	{"CO-50", "These are non-covered services because this is not deemed a medical necessity by the payer."},
	{"CO-197", "Precertification/authorization/notification/pre-treatment absent."},
	{"CO-96", "Non-covered charge(s)."},
	{"CO-119", "Benefit maximum for this time period or occurrence has been reached."},
	{"CO-16", "Claim/service lacks information or has submission/billing error(s)."},
	{"CO-242", "Services not provided by network/primary care providers."},
	{"CO-204", "This service/equipment/drug is not covered under the patient's current benefit plan."},
	{"CO-18", "Exact duplicate claim/service."},
}

// Prior authorization denial reasons (payer-specific codes, specific text as
// CMS-0057-F requires).
var paDenials = []reason{
	{"MED-NEC", "Not medically necessary: the clinical information provided does not meet the plan's criteria for this service."},
	{"DOC-INSUF", "Insufficient documentation: recent office notes and imaging results were not submitted."},
	{"NOT-COVERED", "The requested service is not a covered benefit under the member's plan."},
	{"STEP-THERAPY", "Step therapy not met: the member has not tried the required first-line medications."},
	{"QTY-LIMIT", "The requested quantity exceeds the plan's limit for this service."},
	{"OON", "The requested provider is out of network and no network exception applies."},
	{"ELIGIBILITY", "The member was not eligible for coverage on the requested dates of service."},
}

// paService is a prior-authorizable service with its category.
type paService struct {
	category string
	item     code
	quantity int
}

var paServices = []paService{
	{"Advanced imaging", code{systemCPT, "73721", "Magnetic resonance imaging, any joint of lower extremity, without contrast"}, 1},
	{"Advanced imaging", code{systemCPT, "70553", "Magnetic resonance imaging, brain, without contrast followed by contrast"}, 1},
	{"Outpatient surgery", code{systemCPT, "29881", "Arthroscopy, knee, surgical; with meniscectomy"}, 1},
	{"Outpatient surgery", code{systemCPT, "66984", "Extracapsular cataract removal with insertion of intraocular lens prosthesis"}, 1},
	{"Inpatient admission", code{systemCPT, "27447", "Arthroplasty, knee, condyle and plateau (total knee arthroplasty)"}, 1},
	{"Physical therapy", code{systemCPT, "97110", "Therapeutic exercises, each 15 minutes"}, 12},
	{"Durable medical equipment", code{systemHCPCS, "E0601", "Continuous positive airway pressure (CPAP) device"}, 1},
	{"Durable medical equipment", code{systemHCPCS, "K0001", "Standard wheelchair"}, 1},
	{"Home health", code{systemHCPCS, "G0299", "Direct skilled nursing services of a registered nurse in the home health setting"}, 10},
	{"Sleep study", code{systemCPT, "95810", "Polysomnography, age 6 years or older, sleep staging with 4 or more parameters"}, 1},
}

var paServicesSensitive = [...][]paService{
	substanceUse: {{"Substance use disorder treatment", code{systemHCPCS, "H0018", "Behavioral health; short-term residential treatment program"}, 14}},
	mentalHealth: {{"Behavioral health", code{systemCPT, "90837", "Psychotherapy, 60 minutes with patient"}, 12}},
	hiv:          {{"Specialty pharmacy", code{systemCPT, "87536", "Infectious agent detection by nucleic acid, HIV-1, quantification"}, 4}},
}

// Coverage plans (v3 ActCode coverage types).
var plans = []struct {
	typeCode, typeDisplay, name string
}{
	{"HMO", "health maintenance organization policy", "Sandbox Health Select HMO"},
	{"PPO", "preferred provider organization policy", "Sandbox Health Choice PPO"},
	{"POS", "point of service policy", "Sandbox Health Flex POS"},
	{"MCPOL", "managed care policy", "Sandbox Health Medicare Advantage"},
}

const payerName = "Sandbox Health Plan"

var representativeRelations = []string{"spouse", "parent", "adult child", "legal guardian", "health care agent"}
