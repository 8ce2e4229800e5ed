export * from './EnumerationBlocker';
export * from './PortsnareFunction';
