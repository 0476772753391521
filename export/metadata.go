package export

import (
	"net/http"

	"example.com/gateway/fhir"
)

// Canonicals the CapabilityStatement declares.
const (
	capPDexProviderAccess = "http://hl7.org/fhir/us/davinci-pdex/CapabilityStatement/pdex-provider-access-server"
	capBulkData           = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
	opDavinciDataExport   = "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/davinci-data-export"
	opGroupExport         = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
	opPatientExport       = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
)

// metadata is GET /fhir/metadata: the CapabilityStatement (public). It
// instantiates the Da Vinci PDex Provider Access server and the FHIR Bulk
// Data capability statements.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := h.Service.PublicURL
	searchParam := func(name, definition, typ, doc string) map[string]any {
		return map[string]any{"name": name, "definition": definition, "type": typ, "documentation": doc}
	}
	exportOnly := func(typ string, profiles ...string) map[string]any {
		return map[string]any{
			"type":             typ,
			"supportedProfile": profiles,
			"documentation":    "Available through bulk export ($export, $davinci-data-export) only.",
		}
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"id":           "provider-access-gateway",
		"url":          base + "/fhir/metadata",
		"name":         "ProviderAccessGateway",
		"title":        "Provider Access Gateway (CMS-0057-F Provider Access API)",
		"status":       "active",
		"date":         "2026-01-01",
		"publisher":    fhir.PayerName,
		"kind":         "instance",
		"instantiates": []string{capPDexProviderAccess, capBulkData},
		"software":     map[string]any{"name": "Provider Access Gateway"},
		"implementation": map[string]any{
			"description": "Provider Access API: members attributed to in-network provider organizations, as FHIR R4 bulk exports",
			"url":         base + "/fhir",
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json"},
		"rest": []any{map[string]any{
			"mode":          "server",
			"documentation": "Public documentation: " + base + "/docs",
			"security": map[string]any{
				"extension": []any{map[string]any{
					"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
					"extension": []any{
						map[string]any{"url": "token", "valueUri": base + "/oauth/token"},
					},
				}},
				"service": []any{map[string]any{"coding": []any{map[string]any{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
					"code":   "SMART-on-FHIR",
				}}}},
				"description": "SMART Backend Services (client_credentials with private_key_jwt; client secrets also accepted). Discovery: " + base + "/fhir/.well-known/smart-configuration",
			},
			"resource": []any{
				map[string]any{
					"type":             "Group",
					"supportedProfile": []string{fhir.ProfilePDexProviderGroup},
					"interaction": []any{
						map[string]any{"code": "read"},
						map[string]any{"code": "search-type"},
					},
					"searchParam": []any{
						searchParam("identifier", "http://hl7.org/fhir/SearchParameter/Group-identifier", "token",
							"The organization's NPI (http://hl7.org/fhir/sid/us-npi) or TIN (urn:oid:2.16.840.1.113883.4.4); system|code or code."),
						searchParam("characteristic", "http://hl7.org/fhir/SearchParameter/Group-characteristic", "token",
							"PdexMemberAttributionCS#pdexprovidergroup."),
						searchParam("characteristic-value-reference", "http://hl7.org/fhir/us/davinci-pdex/SearchParameter/pdex-group-characteristic-value-reference", "reference",
							"Organization/{id} of the caller's organization, or :identifier with its NPI."),
						searchParam("code", "http://hl7.org/fhir/SearchParameter/Group-code", "token",
							"PdexMemberAttributionCS#pdexprovidergroup; comma-separated values are OR'ed, repeated parameters AND'ed."),
					},
					"operation": []any{
						map[string]any{"name": "davinci-data-export", "definition": opDavinciDataExport},
						map[string]any{"name": "export", "definition": opGroupExport},
					},
				},
				map[string]any{
					"type":             "Patient",
					"supportedProfile": []string{fhir.ProfilePatient},
					"operation": []any{
						map[string]any{"name": "export", "definition": opPatientExport,
							"documentation": "Every member attributed to the caller's organization."},
					},
				},
				exportOnly("Coverage", fhir.ProfileC4BBCoverage),
				exportOnly("ExplanationOfBenefit",
					fhir.ProfileEOBInpatientBasis, fhir.ProfileEOBOutpatientBasis, fhir.ProfileEOBProfessionalBasis,
					fhir.ProfileEOBOralBasis, fhir.ProfileEOBPharmacyBasis, fhir.ProfilePDexPriorAuthorization),
				exportOnly("Encounter", fhir.ProfileEncounter),
				exportOnly("Condition", fhir.ProfileConditionProblems, fhir.ProfileConditionEncounterDx),
				exportOnly("Observation", fhir.ProfileObservationLab, fhir.ProfileObservationClinical, fhir.ProfileVitalSigns,
					fhir.ProfileSmokingStatus, fhir.ProfileObservationScreening),
				exportOnly("MedicationRequest", fhir.ProfileMedicationRequest),
				exportOnly("Immunization", fhir.ProfileImmunization),
				exportOnly("AllergyIntolerance", fhir.ProfileAllergyIntolerance),
				exportOnly("Procedure", fhir.ProfileProcedure),
				exportOnly("Practitioner", fhir.ProfileC4BBPractitioner, fhir.ProfilePractitioner),
				exportOnly("Organization", fhir.ProfileC4BBOrganization, fhir.ProfileOrganization),
			},
		}},
	}
	writeJSON(w, http.StatusOK, contentFHIRJSON, cs)
}

// smartConfiguration is GET /fhir/.well-known/smart-configuration (public;
// SMART App Launch "Conformance").
func (h *Handler) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if h.SMARTConfiguration != nil {
		body = h.SMARTConfiguration()
	} else {
		base := h.Service.PublicURL
		scopes := []string{"system/*.read", "system/*.rs"}
		for _, t := range append(ResourceTypes, "Group") {
			scopes = append(scopes, "system/"+t+".read", "system/"+t+".rs")
		}
		body = map[string]any{
			"issuer":                                base,
			"jwks_uri":                              base + "/.well-known/jwks.json",
			"token_endpoint":                        base + "/oauth/token",
			"grant_types_supported":                 []string{"client_credentials"},
			"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
			"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
			"scopes_supported":                 scopes,
			"capabilities":                     []string{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2"},
			"code_challenge_methods_supported": []string{"S256"},
		}
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, "application/json", body)
}
