import { createRequire } from 'node:module';
import { expect } from 'chai';
import { botDisplayName, DEFAULT_APP_NAME, slackAppManifest } from '../../../../src/functions/slack/manifest.js';
import { REQUIRED_SCOPES } from '../../../../src/functions/slack/scopes.js';

// js-yaml is only a transitive dependency (of mocha) and has no types here: used to
// check that the hand-written YAML parses, never by the product.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

interface Manifest {
  display_information: { name: string; description?: string };
  features: { bot_user: { display_name: string; always_online: boolean } };
  oauth_config: { scopes: { bot: string[] } };
  settings: { org_deploy_enabled: boolean; socket_mode_enabled: boolean; token_rotation_enabled: boolean };
}

describe('slack app manifest', () => {
  it('parses as YAML with the fields of Slack’s manifest reference', () => {
    const manifest = yaml.load(slackAppManifest()) as Manifest;
    expect(Object.keys(manifest)).to.deep.equal(['display_information', 'features', 'oauth_config', 'settings']);
    expect(manifest.display_information.name).to.equal(DEFAULT_APP_NAME);
    expect(manifest.features.bot_user).to.deep.equal({ display_name: 'soar-slack-worker', always_online: false });
    expect(manifest.settings).to.deep.equal({
      org_deploy_enabled: false,
      socket_mode_enabled: false,
      token_rotation_enabled: false,
    });
  });

  it('asks for exactly the required bot scopes, sorted', () => {
    const manifest = yaml.load(slackAppManifest()) as Manifest;
    const required = Object.keys(REQUIRED_SCOPES);
    expect(manifest.oauth_config.scopes.bot).to.have.members(required).and.have.lengthOf(required.length);
    expect(manifest.oauth_config.scopes.bot).to.deep.equal([...required].sort());
    expect(Object.keys(manifest.oauth_config.scopes)).to.deep.equal(['bot']);
  });

  it('takes an app name (YAML-safe) and scopes', () => {
    const manifest = yaml.load(slackAppManifest({ appName: 'SecOps: #1 bot', scopes: ['chat:write', 'channels:read', 'chat:write'] })) as Manifest;
    expect(manifest.display_information.name).to.equal('SecOps: #1 bot');
    expect(manifest.features.bot_user.display_name).to.equal('secops-1-bot');
    expect(manifest.oauth_config.scopes.bot).to.deep.equal(['channels:read', 'chat:write']);
  });

  it('refuses names Slack would refuse', () => {
    expect(() => slackAppManifest({ appName: 'x'.repeat(36) })).to.throw(RangeError, 'at most 35');
    expect(() => slackAppManifest({ appName: '  ' })).to.throw(RangeError);
    expect(botDisplayName('***')).to.equal('soar-worker');
  });
});
