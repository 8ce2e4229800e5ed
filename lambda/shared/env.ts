/** Environment variables of the functions: the contract is core/environment.ts (kept free of heavy imports: reconcile loads only this). */
export { enforceEnvironmentOf, FUNCTION_ENV, ledgerTableOf, requireEnv } from '../../core/environment';
