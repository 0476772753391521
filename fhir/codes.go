package fhir

// Profile canonicals declared in meta.profile.
const (
	// CARIN BB 2.1 (http://hl7.org/fhir/us/carin-bb/StructureDefinition/).
	carinBase = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"

	ProfileEOBInpatientBasis    = carinBase + "C4BB-ExplanationOfBenefit-Inpatient-Institutional-Basis"
	ProfileEOBOutpatientBasis   = carinBase + "C4BB-ExplanationOfBenefit-Outpatient-Institutional-Basis"
	ProfileEOBProfessionalBasis = carinBase + "C4BB-ExplanationOfBenefit-Professional-NonClinician-Basis"
	ProfileEOBOralBasis         = carinBase + "C4BB-ExplanationOfBenefit-Oral-Basis"
	ProfileEOBPharmacyBasis     = carinBase + "C4BB-ExplanationOfBenefit-Pharmacy-Basis"
	ProfileEOBInpatient         = carinBase + "C4BB-ExplanationOfBenefit-Inpatient-Institutional"
	ProfileEOBOutpatient        = carinBase + "C4BB-ExplanationOfBenefit-Outpatient-Institutional"
	ProfileEOBProfessional      = carinBase + "C4BB-ExplanationOfBenefit-Professional-NonClinician"
	ProfileEOBOral              = carinBase + "C4BB-ExplanationOfBenefit-Oral"
	ProfileEOBPharmacy          = carinBase + "C4BB-ExplanationOfBenefit-Pharmacy"
	ProfileC4BBCoverage         = carinBase + "C4BB-Coverage"
	ProfileC4BBOrganization     = carinBase + "C4BB-Organization"
	ProfileC4BBPractitioner     = carinBase + "C4BB-Practitioner"

	// US Core 6.1.0.
	usCoreBase = "http://hl7.org/fhir/us/core/StructureDefinition/"

	ProfilePatient                 = usCoreBase + "us-core-patient"
	ProfileEncounter               = usCoreBase + "us-core-encounter"
	ProfileOrganization            = usCoreBase + "us-core-organization"
	ProfilePractitioner            = usCoreBase + "us-core-practitioner"
	ProfileConditionProblems       = usCoreBase + "us-core-condition-problems-health-concerns"
	ProfileConditionEncounterDx    = usCoreBase + "us-core-condition-encounter-diagnosis"
	ProfileObservationLab          = usCoreBase + "us-core-observation-lab"
	ProfileObservationClinical     = usCoreBase + "us-core-observation-clinical-result"
	ProfileVitalSigns              = usCoreBase + "us-core-vital-signs"
	ProfileSmokingStatus           = usCoreBase + "us-core-smokingstatus"
	ProfileObservationScreening    = usCoreBase + "us-core-observation-screening-assessment"
	ProfileMedicationRequest       = usCoreBase + "us-core-medicationrequest"
	ProfileImmunization            = usCoreBase + "us-core-immunization"
	ProfileAllergyIntolerance      = usCoreBase + "us-core-allergyintolerance"
	ProfileProcedure               = usCoreBase + "us-core-procedure"
	ProfilePDexPriorAuthorization  = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization"
	ProfilePDexProviderGroup       = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-provider-group"
	extAttributionListStatus       = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-attributionListStatus"
	extReviewAction                = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction"
	extReviewActionCode            = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewActionCode"
	extWhenAdjudicated             = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/base-ext-when-adjudicated"
	extDataAbsentReason            = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	systemPDexAdjudicationDiscrim  = "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PDexAdjudicationDiscriminator"
	systemPDexMemberAttribution    = "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMemberAttributionCS"
	systemX12ReviewAction          = "https://codesystem.x12.org/005010/306" // X12 278 HCR01, as in the PDex example
	systemX12ServiceType           = "https://x12.org/codes/service-type-codes"
	systemC4BBSupportingInfoType   = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
	systemC4BBAdjudicationDiscrim  = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
	systemC4BBAdjudication         = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
	systemC4BBPayerAdjudicationSt  = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus"
	systemC4BBClaimCareTeamRole    = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole"
	systemC4BBClaimDiagnosisType   = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType"
	systemC4BBClaimProcedureType   = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimProcedureType"
	systemC4BBInstitutionalSubType = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType"
	systemC4BBIdentifierType       = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
)

// Code systems (terminology.hl7.org and external ones, as CARIN BB and US
// Core bind them).
const (
	SystemNPI     = "http://hl7.org/fhir/sid/us-npi"
	SystemTIN     = "urn:oid:2.16.840.1.113883.4.4"
	SystemICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
	// SystemICD10PCS is ICD-10-PCS as CARIN BB names it.
	SystemICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
	SystemCPT      = "http://www.ama-assn.org/go/cpt"
	// SystemHCPCS is the HCPCS canonical that CARIN BB's required
	// item.productOrService value sets include (and terminology.hl7.org
	// names); the Blue Button 2.0 URI
	// https://bluebutton.cms.gov/resources/codesystem/hcpcs is accepted on
	// input and normalised to it.
	SystemHCPCS           = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
	SystemNDC             = "http://hl7.org/fhir/sid/ndc"
	SystemCDT             = "http://www.ada.org/cdt"
	SystemHIPPS           = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/ProspMedicareFeeSvcPmtGen/HIPPSCodes"
	SystemSNOMED          = "http://snomed.info/sct"
	SystemLOINC           = "http://loinc.org"
	SystemRxNorm          = "http://www.nlm.nih.gov/research/umls/rxnorm"
	SystemCVX             = "http://hl7.org/fhir/sid/cvx"
	SystemPOS             = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
	SystemRevenue         = "https://www.nubc.org/CodeSystem/RevenueCodes"
	SystemTOB             = "https://www.nubc.org/CodeSystem/TypeOfBill"
	SystemMSDRG           = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/MS-DRG-Classifications-and-Software"
	SystemPOA             = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/HospitalAcqCond/Coding"
	SystemCARC            = "https://x12.org/codes/claim-adjustment-reason-codes"
	SystemNCPDPRejectCode = "http://terminology.hl7.org/CodeSystem/NCPDPRejectCode"

	systemClaimType          = "http://terminology.hl7.org/CodeSystem/claim-type"
	systemAdjudication       = "http://terminology.hl7.org/CodeSystem/adjudication"
	systemDiagnosisType      = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
	systemV2IdentifierType   = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemActCode            = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemParticipationType  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	systemSubscriberRelation = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
	systemCoverageClass      = "http://terminology.hl7.org/CodeSystem/coverage-class"
	systemOrganizationType   = "http://terminology.hl7.org/CodeSystem/organization-type"
	systemPayerType          = "urn:oid:2.16.840.1.113883.3.221.5" // PHDSC Source of Payment Typology
)

// Identifier systems of the payer's own business identifiers. They live in
// the RFC 6963 "example" URN namespace until the payer's real namespaces are
// known; change them here, in one place.
const (
	SystemMemberID           = "urn:example:payer:member-id"
	SystemClaimID            = "urn:example:payer:claim-id"
	SystemCoverageID         = "urn:example:payer:coverage-id"
	SystemEncounterID        = "urn:example:payer:encounter-id"
	SystemPriorAuthorization = "urn:example:payer:prior-authorization-id"
)
