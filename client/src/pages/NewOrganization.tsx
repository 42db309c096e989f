/** Create an organization (its Default Project comes with it). */
import { useNavigate } from '@solidjs/router';
import { createResource, createSignal, Show } from 'solid-js';
import { PLANS } from '../../../shared/plans.js';
import { orgCreateInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf } from '../api.js';
import { orgs, orgsLoaded, refreshOrgs } from '../state/orgs.js';
import { me } from '../state/session.js';
import { Button, Card, PageHeader, TextField } from '../ui/components.js';
import { validate, type FieldErrors } from '../ui/forms.js';
import { toast } from '../ui/toast.js';
import { LimitNote } from './plan-limit.js';

export function NewOrganizationPage() {
  const navigate = useNavigate();
  const [name, setName] = createSignal('');
  const [billingEmail, setBillingEmail] = createSignal('');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  const first = () => orgsLoaded() && orgs.list.length === 0;
  // The refusal creating one would get (null: allowed), shown before the form is sent.
  const [allowance, { refetch }] = createResource(() => api.organization.creationLimit.query().catch(() => null));
  const atLimit = () => allowance()?.reason ?? null;

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const checked = validate(orgCreateInput, { name: name(), ...(billingEmail().trim() ? { billingEmail: billingEmail() } : {}) });
    if (!checked.ok) return setErrors(checked.errors);
    setErrors({});
    setPending(true);
    try {
      const { organization } = await api.organization.create.mutate(checked.data);
      await refreshOrgs().catch(() => {});
      toast.success(`${organization.name} is ready, with its Default Project.`);
      navigate(`/org/${organization.id}/overview`);
    } catch (err) {
      setErrors(fieldErrorsOf(err));
      setFormError(errorMessage(err));
      void refetch();
    } finally {
      setPending(false);
    }
  };

  return (
    <div class="page page-narrow">
      <PageHeader
        title={first() ? 'Create your first organization' : 'New organization'}
        description="Organizations hold projects, members, billing, provider keys and usage. A Default Project is created with it."
      />
      <Card>
        <LimitNote reason={atLimit()} testId="organization-limit" />
        <form onSubmit={submit} novalidate>
          <fieldset class="plain-fieldset" disabled={!!atLimit()}>
          <TextField label="Organization name" value={name()} onInput={setName} error={errors().name} placeholder="Acme Inc." autofocus required />
          <TextField
            label="Billing email (optional)"
            type="email"
            value={billingEmail()}
            onInput={setBillingEmail}
            error={errors().billingEmail}
            hint={`Invoices and budget alerts go here. Defaults to ${me()?.email ?? 'your email'}.`}
          />
          <Show when={formError()}>
            <p class="form-error" role="alert">
              {formError()}
            </p>
          </Show>
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={pending()} disabled={!!atLimit()}>
              Create organization
            </Button>
          </div>
          </fieldset>
          <p class="field-hint">
            <Show when={allowance()}>
              {(a) => (
                <>
                  {a().limit === null ? `You own ${a().owned} organizations.` : `You own ${a().owned} of the ${a().limit} organizations you may own.`}{' '}
                </>
              )}
            </Show>
            {PLANS.free.name}: up to {PLANS.free.organizationsPerUser} per user and {PLANS.free.projectsPerOrganization} projects per organization; owning a{' '}
            {PLANS.pro.name} organization raises it to {PLANS.pro.organizationsPerUser}, with {PLANS.pro.projectsPerOrganization} projects in each {PLANS.pro.name} one.
          </p>
        </form>
      </Card>
    </div>
  );
}
