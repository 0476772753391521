-- The developer portal (DESIGN.md §2): access request history, rosters,
-- the outbox's retries, idempotent mutations and the educational material.

-- Idempotency (clientMutationId): the SHA-256 of the input a key was first
-- used with, so that reusing a key for another input is refused (CONFLICT)
-- instead of answered with the first input's result.
ALTER TABLE mutation_results ADD COLUMN input_sha256 bytea;

-- A submission keeps the stages as submitted, so a decision can be read
-- against what the reviewer saw even after the organization edits a
-- returned request.
ALTER TABLE access_request_transitions ADD COLUMN stages jsonb;

-- Rosters are matched against one environment's members (a sandbox client's
-- roster against the synthetic members). Rows may ask for their own period;
-- a confirmed row records the attribution it made. demographics_agree tells
-- operators whether an identifier match agrees with the row's name, birth
-- date and gender (providers never see it).
ALTER TABLE roster_submissions
  ADD COLUMN environment text NOT NULL DEFAULT 'PRODUCTION' CHECK (environment IN ('SANDBOX','PRODUCTION'));
CREATE INDEX roster_submissions_organization ON roster_submissions (organization_id, submitted_at DESC);
ALTER TABLE roster_rows
  ADD COLUMN period_start       date,
  ADD COLUMN period_end         date,
  ADD COLUMN demographics_agree boolean,
  ADD COLUMN attribution_id     uuid REFERENCES attributions(id) ON DELETE SET NULL,
  ADD CONSTRAINT roster_rows_period CHECK (period_end IS NULL OR period_start IS NULL OR period_end >= period_start);
CREATE INDEX roster_rows_pending ON roster_rows (roster_id) WHERE status = 'PENDING';

-- Who recorded an operator's or a confirmed roster's attribution.
ALTER TABLE attributions ADD COLUMN recorded_by text NOT NULL DEFAULT '';

-- Outbox delivery retries with backoff.
ALTER TABLE email_outbox ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
DROP INDEX email_outbox_unsent;
CREATE INDEX email_outbox_unsent ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX email_outbox_created ON email_outbox (created_at DESC, id DESC);

CREATE INDEX invitations_email ON invitations (lower(email)) WHERE accepted_at IS NULL;

-- Educational material (42 CFR 422.121(a)(4)(ii) for members, (a)(5) for
-- providers), kept as data so the plan can edit it without a release.
ALTER TABLE educational_materials
  ADD COLUMN citation text NOT NULL DEFAULT '',
  ADD COLUMN position int NOT NULL DEFAULT 0;

INSERT INTO educational_materials (id, audience, language, position, citation, title, body) VALUES
('member-provider-access', 'MEMBER', 'en', 1, '42 CFR 422.121(a)(4)(ii)',
 'Your doctors can see your health plan information',
 $md$Your health plan shares information about your care with the doctors, hospitals and other health care providers in our network who treat you. This is called **Provider Access**. Federal rules require us to offer it (42 CFR 422.121).

## What we share

- Your claims and encounters: the visits, tests, procedures and medicines we have a record of, from January 1, 2016 on. We do **not** share what was paid, what you paid, or your remaining benefits.
- Your health information, such as conditions, lab results, medicines, immunizations and allergies.
- Your prior authorizations (requests for approval of a service before you get it), including approvals and denials. Prior authorizations for drugs are not included.

We never share records that other laws protect more strictly, such as substance use treatment records.

## Who can see it

Only providers in our network who have a care relationship with you. A provider is linked to you when you are their patient (for example, you chose them as your primary care provider, or they treat you and we confirmed it). Providers outside our network cannot use Provider Access.

## Why it helps

- Your providers see care you got elsewhere, so you repeat your story, and your tests, less often.
- Your providers can coordinate your care and spot problems such as medicines that should not be taken together.
- Approvals already given are visible, which can speed up your care.

## Your choice: opting out and opting back in

Sharing is on unless you say no. You can **opt out at any time**, and you can **opt back in at any time**.

- To opt out or back in, call Member Services at the number on your member ID card, or use an app you have connected to your health plan account.
- A personal representative (for example, a parent of a minor child, or someone with power of attorney) can do this for you.
- Your choice takes effect right away, including for requests providers made before you chose. It applies to all providers using Provider Access.

Opting out does not change your coverage or your benefits, and your providers can still ask you for your information directly.$md$),
('member-provider-access', 'MEMBER', 'es', 1, '42 CFR 422.121(a)(4)(ii)',
 'Sus médicos pueden ver la información de su plan de salud',
 $md$Su plan de salud comparte información sobre su atención con los médicos, hospitales y otros proveedores de nuestra red que lo atienden. Esto se llama **Acceso para Proveedores** (Provider Access). Las normas federales nos exigen ofrecerlo (42 CFR 422.121).

## Qué compartimos

- Sus reclamaciones y visitas: las consultas, pruebas, procedimientos y medicamentos que tenemos registrados, desde el 1 de enero de 2016. **No** compartimos cuánto se pagó, cuánto pagó usted ni los beneficios que le quedan.
- Su información de salud, como afecciones, resultados de laboratorio, medicamentos, vacunas y alergias.
- Sus autorizaciones previas (solicitudes de aprobación de un servicio antes de recibirlo), incluidas las aprobadas y las denegadas. No se incluyen las autorizaciones previas de medicamentos.

Nunca compartimos registros que otras leyes protegen de forma más estricta, como los registros de tratamiento por consumo de sustancias.

## Quién puede verla

Solo los proveedores de nuestra red que tienen una relación de atención con usted. Un proveedor queda vinculado a usted cuando usted es su paciente (por ejemplo, lo eligió como su proveedor de atención primaria, o lo atiende y nosotros lo confirmamos). Los proveedores fuera de nuestra red no pueden usar el Acceso para Proveedores.

## Por qué le ayuda

- Sus proveedores ven la atención que recibió en otros lugares, así que tendrá que repetir su historia, y sus pruebas, con menos frecuencia.
- Sus proveedores pueden coordinar su atención y detectar problemas, como medicamentos que no deben tomarse juntos.
- Las aprobaciones ya otorgadas quedan visibles, lo que puede agilizar su atención.

## Usted decide: dejar de compartir y volver a compartir

La información se comparte a menos que usted diga que no. Puede **dejar de compartir en cualquier momento** y puede **volver a compartir en cualquier momento**.

- Para dejar de compartir o volver a compartir, llame a Servicios para Miembros al número que aparece en su tarjeta de miembro, o use una aplicación que haya conectado a su cuenta del plan de salud.
- Un representante personal (por ejemplo, el padre o la madre de un menor, o una persona con un poder notarial) puede hacerlo por usted.
- Su decisión se aplica de inmediato, incluso a las solicitudes que los proveedores hicieron antes de que usted decidiera. Se aplica a todos los proveedores que usan el Acceso para Proveedores.

Dejar de compartir no cambia su cobertura ni sus beneficios, y sus proveedores pueden seguir pidiéndole su información directamente.$md$),
('provider-requesting-data', 'PROVIDER', 'en', 2, '42 CFR 422.121(a)(5)',
 'How to request your patients'' data through Provider Access',
 $md$In-network providers can get the health plan's data about the patients they treat, at no cost, through the Provider Access API (42 CFR 422.121).

1. **Register your organization** in the developer portal with its organization NPI and TIN. You can try everything at once in the sandbox, which holds only made-up patients.
2. **Ask for production access.** Fill in the request (organization, contacts, intended use, attestation) and submit it. The plan reviews it and tells you the decision by email.
3. **Create a production API client** once approved. Its secret is shown once: keep it in your system's secret store.
4. **Request data.** Your system asks for a token and then either queries the GraphQL API or starts a FHIR bulk export of your attributed patients (`Group/{id}/$davinci-data-export`). Exports are ready well within one business day.

You receive claims and encounters without payment or cost-sharing amounts, clinical data and non-drug prior authorizations, from January 1, 2016 on. Patients who opted out are not included, and their records are never shown.$md$),
('provider-attribution', 'PROVIDER', 'en', 3, '42 CFR 422.121(a)(5), (b)(1)',
 'How patients are attributed to your organization',
 $md$Provider Access shares a patient's data only with providers who have a care relationship with them. The plan records that relationship as an **attribution** of the patient to your organization (by its organization NPI), sometimes to one of its practitioners, for a period.

- **From the plan:** attributions come from the plan's own records, such as the primary care provider a member chose, or recent care your organization gave.
- **From you:** submit a roster of your patients (member identifier, or name, birth date and gender, with the period of care). The plan matches each row and confirms it; rows that do not match come back with a reason about the row only.
- **When it counts:** an attribution gives access while its period is current, and from up to 30 days before it starts. When it ends, access ends.
- **Opt-out:** a patient may opt out at any time. Opted-out patients disappear from your group, your counts and your exports, including exports you already started.

Your organization's attribution group lists the patients you can currently see.$md$);
