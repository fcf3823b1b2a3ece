import { createRequire } from 'node:module';
import { expect } from 'chai';
import { botDisplayName, DEFAULT_APP_NAME, slackAppManifest } from '../../../../src/functions/slack/manifest.js';
import { INBOUND_SCOPES, REQUIRED_SCOPES } from '../../../../src/functions/slack/scopes.js';

// js-yaml is only a transitive dependency (of mocha) and has no types here: used to
// check that the hand-written YAML parses, never by the product.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

interface Manifest {
  display_information: { name: string; description?: string };
  features: {
    bot_user: { display_name: string; always_online: boolean };
    slash_commands?: { command: string; description: string; usage_hint?: string; should_escape: boolean; url?: string }[];
  };
  oauth_config: { scopes: { bot: string[] } };
  settings: {
    event_subscriptions?: { request_url?: string; bot_events: string[] };
    interactivity?: { is_enabled: boolean; request_url?: string };
    org_deploy_enabled: boolean;
    socket_mode_enabled: boolean;
    token_rotation_enabled: boolean;
  };
}

describe('slack app manifest', () => {
  it('by default receives the inbound half over Socket Mode: events, interactivity, the slash command and their scopes', () => {
    const manifest = yaml.load(slackAppManifest({ command: '/secops' })) as Manifest;
    expect(manifest.settings).to.deep.equal({
      event_subscriptions: { bot_events: ['app_mention', 'message.channels', 'message.groups', 'message.im'] },
      interactivity: { is_enabled: true },
      org_deploy_enabled: false,
      socket_mode_enabled: true,
      token_rotation_enabled: false,
    });
    expect(manifest.features.slash_commands).to.deep.equal([
      { command: '/secops', description: 'Look up a SOAR incident', usage_hint: 'incident 2103 | help', should_escape: false },
    ]);
    const scopes = [...Object.keys(REQUIRED_SCOPES), ...Object.keys(INBOUND_SCOPES)].sort();
    expect(manifest.oauth_config.scopes.bot).to.deep.equal(scopes);
    expect(slackAppManifest()).to.contain('connections:write');
  });

  it('names the Request URL everywhere Slack posts with inbound http, and refuses a non-https one', () => {
    const url = 'https://soar-worker.example.com/slack/events';
    const manifest = yaml.load(slackAppManifest({ inbound: 'http', requestUrl: url })) as Manifest;
    expect(manifest.settings.socket_mode_enabled).to.equal(false);
    expect(manifest.settings.event_subscriptions!.request_url).to.equal(url);
    expect(manifest.settings.interactivity).to.deep.equal({ is_enabled: true, request_url: url });
    expect(manifest.features.slash_commands![0]!.url).to.equal(url);
    expect(() => slackAppManifest({ inbound: 'http', requestUrl: 'http://insecure.example.com/' })).to.throw(RangeError, 'https');
    expect(() => slackAppManifest({ command: 'soar' })).to.throw(RangeError, 'slash command');
  });

  it('parses as YAML with the fields of Slack’s manifest reference (outbound only)', () => {
    const manifest = yaml.load(slackAppManifest({ inbound: 'off' })) as Manifest;
    expect(Object.keys(manifest)).to.deep.equal(['display_information', 'features', 'oauth_config', 'settings']);
    expect(manifest.display_information.name).to.equal(DEFAULT_APP_NAME);
    expect(manifest.features.bot_user).to.deep.equal({ display_name: 'soar-slack-worker', always_online: false });
    expect(manifest.settings).to.deep.equal({
      org_deploy_enabled: false,
      socket_mode_enabled: false,
      token_rotation_enabled: false,
    });
  });

  it('asks for exactly the required bot scopes, sorted (outbound only)', () => {
    const manifest = yaml.load(slackAppManifest({ inbound: 'off' })) as Manifest;
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
