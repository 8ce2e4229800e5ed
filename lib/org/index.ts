export * from './config';
export * from './DecisionPlane';
export * from './EnforcementPlane';
export * from './FirewallManagerPolicy';
export * from './names';
export * from './OrganizationStacks';
