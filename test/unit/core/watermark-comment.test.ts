/** The schema.sql comment that declares a watermark, its zone and its clock skew. */
import { describe, expect, it } from 'vitest';
import { watermarkRuleOf } from '../../../src/db/catalog.ts';

describe('watermark comment', () => {
  it('plain bluegreen:watermark declares no rule', () => {
    expect(watermarkRuleOf('bluegreen:watermark')).toBeUndefined();
  });
  it('reads zone and skew in any order', () => {
    expect(watermarkRuleOf('bluegreen:watermark zone=Europe/Berlin skew=30s')).toEqual({ zone: 'Europe/Berlin', skew: '30s' });
    expect(watermarkRuleOf('bluegreen:watermark skew=2min')).toEqual({ skew: '2min' });
    expect(watermarkRuleOf('set by the app. bluegreen:watermark zone=America/New_York')).toEqual({ zone: 'America/New_York' });
  });
  it('ignores words before the marker', () => {
    expect(watermarkRuleOf('zone=UTC bluegreen:watermark')).toBeUndefined();
  });
});
