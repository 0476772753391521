package store

import (
	"context"

	"example.com/gateway/gateway"
)

// Educational material is data (migrations/0006 loads the first version):
// for members, in plain language, what Provider Access shares, with whom,
// its benefits and how to opt out and back in (42 CFR 422.121(a)(4)(ii));
// for providers, how to request data and how attribution works (42 CFR
// 422.121(a)(5)).

const educationalMaterialsSQL = `
SELECT id, audience, language, title, body, citation, updated_at FROM educational_materials
WHERE ($1::text IS NULL OR audience = $1) AND ($2::text IS NULL OR language = $2)
ORDER BY position, id, language`

// EducationalMaterials returns the material for audience and language (""
// for any), in reading order. It is public information: every caller may
// read it.
func (db *DB) EducationalMaterials(ctx context.Context, audience gateway.Audience, language string) ([]gateway.EducationalMaterial, error) {
	out := []gateway.EducationalMaterial{}
	err := db.SelectContext(ctx, &out, educationalMaterialsSQL, argString(string(audience)), argString(language))
	return out, err
}
